"""Benchmark: the delivery queue under a flood, next to the old FIFO queue.

Records the same backlog twice, each time in a fresh SQLite database (in a
temporary directory; nothing listens, nothing leaves the machine): N
``pull_request`` deliveries of repository A (N/HEADS pull requests, each pushed
HEADS times), then one ``push`` and one ``pull_request`` of repository B, then
one ``/run`` comment. Then drains it in batches of 8, as a worker does, in two
orders:

* FIFO, the baseline: the queue before fair claiming, oldest first (the claim
  query flowbot used until then), every PR head validated;
* flowbot: ``DeliveryStore.claim`` (per-repository turns, then priority), and a
  PR head skipped when a newer head of the same PR is queued or done (the check
  the validate handler makes, ``DeliveryStore.superseded_by``).

Prints, for both: deliveries processed before B's push, B's pull request and
the command, PR validations done and skipped, and the time spent claiming
(queue overhead only: handlers do nothing here; a real validation costs several
GitHub writes, paced at one per second).

    .venv/bin/python bench/flood.py [-n 2000] [--heads 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from bot.intake.deliveries import Delivery, DeliveryStatus, DeliveryStore, _row, deliveries_table
from runner.state.db import connect

if TYPE_CHECKING:
    from tests.clock import FakeClock

MAX_DELIVERIES = 50_000  # bounded: the whole backlog lives in one temporary file
BATCH = 8
REPO_A, REPO_B = "flood/a", "quiet/b"
PUSH_B, PR_B, COMMAND = "push-b", "pr-b", "run-command"


def _repository(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {"full_name": full_name, "name": name, "owner": {"login": owner},
            "clone_url": f"https://github.com/{full_name}.git", "default_branch": "main"}


def _pull_request(number: int, push: int) -> dict[str, Any]:
    action = "opened" if push == 0 else "synchronize"
    return {"action": action, "number": number, "repository": _repository(REPO_A),
            "pull_request": {"number": number, "head": {"sha": f"{number:030x}{push:010x}"}}}


def backlog(count: int, heads: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(delivery id, event, payload): the flood, then B's push, then the command.
    The pushes of different pull requests interleave, as they would in real life."""
    pulls = max(1, count // heads)
    items = [(f"pr-{n}-{push}", "pull_request", _pull_request(n + 1, push))
             for push in range(heads) for n in range(pulls)][:count]
    items.append((PUSH_B, "push", {"ref": "refs/heads/main", "after": "b" * 40,
                                   "repository": _repository(REPO_B)}))
    items.append((PR_B, "pull_request", {**_pull_request(1, 0),
                                         "repository": _repository(REPO_B)}))
    items.append((COMMAND, "issue_comment", {
        "action": "created", "repository": _repository(REPO_A),
        "issue": {"number": 1}, "comment": {"id": 1, "body": "/run hello"}}))
    return items


def record(store: DeliveryStore, clock: FakeClock,
           items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """As intake does: group commits of up to 256, a millisecond apart."""
    for start in range(0, len(items), 256):
        chunk = items[start:start + 256]
        store.record_many([(i, e, json.dumps(p).encode(), p) for i, e, p in chunk])
        clock.advance(0.001)


def fifo_claim(store: DeliveryStore, engine: Any, limit: int) -> list[Delivery]:
    """The claim flowbot used before fair queues: oldest pending first."""
    t = deliveries_table
    pending = (select(t.c.id).where(t.c.status == DeliveryStatus.PENDING.value)
               .order_by(t.c.received_at).limit(limit).scalar_subquery())
    query = (update(t).where(t.c.id.in_(pending), t.c.status == DeliveryStatus.PENDING.value)
             .values(status=DeliveryStatus.PROCESSING.value, attempts=t.c.attempts + 1)
             .returning(*t.c))
    with engine.begin() as conn:
        rows = conn.execute(query).all()
    return sorted((_row(r) for r in rows), key=lambda d: d.received_at)


@dataclass
class Figures:
    before_push: int = -1
    before_pull: int = -1
    before_command: int = -1
    validated: int = 0
    skipped: int = 0
    claim_seconds: float = 0.0
    claims: int = 0


def drain(store: DeliveryStore, claim: Callable[[int], list[Delivery]],
          skip_superseded: bool) -> Figures:
    figures, processed = Figures(), 0
    while True:
        start = time.perf_counter()
        claimed = claim(BATCH)
        figures.claim_seconds += time.perf_counter() - start
        figures.claims += 1
        if not claimed:
            return figures
        for delivery in claimed:
            if delivery.id == PUSH_B:
                figures.before_push = processed
            elif delivery.id == PR_B:
                figures.before_pull = processed
                figures.validated += 1
            elif delivery.id == COMMAND:
                figures.before_command = processed
            elif skip_superseded and store.superseded_by(delivery.id) is not None:
                figures.skipped += 1
            else:
                figures.validated += 1
            processed += 1
        store.finish_many([(d.id, None) for d in claimed])


def measure(directory: Path, items: list[tuple[str, str, dict[str, Any]]],
            fair: bool) -> Figures:
    engine = connect(f"sqlite:///{directory / ('fair.db' if fair else 'fifo.db')}")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/
    from tests.clock import FakeClock

    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = DeliveryStore(engine, clock)
    record(store, clock, items)
    clock.advance(1)
    try:
        if fair:
            return drain(store, store.claim, skip_superseded=True)
        return drain(store, lambda limit: fifo_claim(store, engine, limit), False)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="PR deliveries of repository A")
    parser.add_argument("--heads", type=int, default=4, help="pushes per pull request")
    args = parser.parse_args()
    if not 1 <= args.n <= MAX_DELIVERIES or args.heads < 1:
        raise SystemExit(f"-n must be 1..{MAX_DELIVERIES} and --heads at least 1")
    items = backlog(args.n, args.heads)
    with tempfile.TemporaryDirectory(prefix="flowbot-flood-") as tmp:
        fifo = measure(Path(tmp), items, fair=False)
        fair = measure(Path(tmp), items, fair=True)
    print(f"{args.n} PR deliveries of {REPO_A} ({args.heads} heads per PR), then a push and "
          f"a PR of {REPO_B}, then a /run comment; claimed {BATCH} at a time")
    print(f"{'':<26} {'FIFO (before)':>14} {'flowbot':>10}")
    rows = [("processed before B's push", fifo.before_push, fair.before_push),
            ("processed before B's PR", fifo.before_pull, fair.before_pull),
            ("processed before /run", fifo.before_command, fair.before_command),
            ("PR heads validated", fifo.validated, fair.validated),
            ("PR heads skipped", fifo.skipped, fair.skipped)]
    for label, old, new in rows:
        print(f"{label:<26} {old:>14} {new:>10}")
    for label, fig in (("FIFO", fifo), ("flowbot", fair)):
        print(f"claiming, {label}: {fig.claims} claims, "
              f"{fig.claim_seconds / fig.claims * 1000:.2f} ms each")


if __name__ == "__main__":
    main()
