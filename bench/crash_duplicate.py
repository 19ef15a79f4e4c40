"""Benchmark: how many runs one ``/run`` delivery starts when it is replayed.

A crash after a ``/run`` was accepted but before its delivery was finished
makes the delivery run again at start-up (GitHub's "Redeliver" does the same).
This dispatches the same ``issue_comment`` delivery N times through the real
router, handler and run store (SQLite in a temporary directory; GitHub and the
run executor are the recording fakes of ``tests/fakes.py``) and counts runs
recorded and reply comments posted:

- baseline: the delivery re-dispatched with no request key (what flowbot did
  before runs were keyed), so each dispatch submits the flow again;
- keyed: the same delivery id each time, as a requeue or redelivery brings it.

    .venv/bin/python bench/crash_duplicate.py [-n 5]

Target: keyed = 1 run and 1 reply for any N.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bot.handlers import build_router
from bot.intake.router import Event
from runner.state.db import connect
from runner.validation.validate import validate_files

HELLO = b"id: hello\ntasks:\n  - {id: t, image: busybox, commands: [echo hi]}\n"


def replay(times: int, delivery_id: str, data_dir: Path) -> tuple[int, int]:
    """Dispatch one /run comment ``times`` times; (runs recorded, replies posted)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/
    from tests.clock import FakeClock
    from tests.fakes import LocalGitHub, issue_comment_event, make_services

    engine = connect(f"sqlite:///{data_dir / 'flowbot.db'}")
    services = make_services(engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    services.registry.sync("acme/flows", "c" * 40,
                           validate_files({"flows/hello.yml": HELLO}).flows)
    github = services.github
    assert isinstance(github, LocalGitHub)
    github.permissions["writer"] = "write"
    payload = issue_comment_event("/run hello", login="writer", comment_id=4242)
    router = build_router()
    for _ in range(times):
        router.dispatch(Event("issue_comment", payload, delivery_id), services)
    replies = github.for_repo("acme/flows", None).names().count("create_comment")
    runs = len(services.store.list_runs())
    engine.dispose()
    return runs, replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5, help="dispatches of the same delivery")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base, tempfile.TemporaryDirectory() as keyed:
        naive = replay(args.n, "", Path(base))
        fixed = replay(args.n, "delivery-1", Path(keyed))
    print(f"one /run delivery dispatched {args.n} times")
    print(f"{'':<34} {'runs':>5} {'replies':>8}")
    print(f"{'baseline (re-dispatch, no key)':<34} {naive[0]:>5} {naive[1]:>8}")
    print(f"{'keyed by (delivery id, line)':<34} {fixed[0]:>5} {fixed[1]:>8}")


if __name__ == "__main__":
    main()
