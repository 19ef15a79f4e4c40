"""Benchmark: 1, 2 and 3 ``flowbot serve`` replicas on one PostgreSQL database.

For each replica count, a fresh database and data directory, the fake GitHub
over HTTP (loopback) and the real Docker engine with the offline busybox image:

* a flood of N signed ``ping`` deliveries, sent round-robin to the replicas by
  C concurrent senders: deliveries/s from the first send until every delivery
  is processed (its row done), and p50/p99 intake latency (POST to 202);
* a burst of R ``/run`` comments of a trivial flow (busybox ``true``), spread
  the same way: runs/min from the first comment until every run has ended;
* (2 and 3 replicas) K long runs started, then the replica running one of them
  SIGKILLed: seconds until another replica adopts it (its row's ``adopted_by``)
  and until each of its runs is taken over (owned by a live replica or ended).

Each figure is printed next to the one-replica baseline of the same run. The
replicas keep the default heartbeat and lease (2 s, 10 s), so adoption is
bounded below by the lease.

    FLOWBOT_TEST_POSTGRES_URL=postgresql+psycopg://... .venv/bin/python bench/replicas.py \\
        [-n 1000] [-c 16] [-r 30] [-k 2] [--counts 1,2,3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.intake.app import sign  # noqa: E402
from bot.intake.deliveries import DeliveryStatus  # noqa: E402
from runner import offline_images  # noqa: E402
from tests.bot.delivery_rows import delivery_count  # noqa: E402
from tests.bot.e2e_support import SECRET  # noqa: E402
from tests.bot.replica_kit import Replicas  # noqa: E402
from tests.conftest import fresh_database  # noqa: E402
from tests.fakegithub.fixtures import FAKE_REPO, fake_server  # noqa: E402
from tests.polling import wait_until  # noqa: E402

TRIVIAL = "id: trivial\ntasks:\n  - id: t\n    image: busybox:latest\n    commands: ['true']\n"
LONG = "id: long\ntasks:\n  - id: t\n    image: busybox:latest\n    commands: ['sleep 15']\n"
DEFAULT_LEASES = {"FLOWBOT_REPLICA_HEARTBEAT_SECONDS": "2", "FLOWBOT_REPLICA_LEASE_SECONDS": "10"}
PING = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1,
                   "hook": {"type": "Repository", "id": 1, "events": ["push"]},
                   "repository": {"full_name": FAKE_REPO}}).encode()
WAIT = 600.0


@dataclass
class Figures:
    replicas: int
    deliveries_per_s: float
    intake_p50_ms: float
    intake_p99_ms: float
    runs_per_min: float
    adopted_s: float | None = None  # SIGKILL to the dead replica's adopted_by
    taken_over_s: float | None = None  # SIGKILL to each of its runs taken over


async def _flood(urls: list[str], count: int, senders: int) -> list[float]:
    """POST ``count`` signed pings round-robin to ``urls``; each one's latency (s)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            began = time.perf_counter()
            answer = await client.post(urls[index % len(urls)] + "/webhook", content=PING, headers={
                "X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(SECRET, PING)})
            assert answer.status_code == 202, answer.text
            latencies.append(time.perf_counter() - began)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))
    return latencies


def _deliveries(group: Replicas, count: int, senders: int) -> tuple[float, list[float]]:
    began = time.perf_counter()
    latencies = asyncio.run(_flood([one.url for one in group.members], count, senders))
    wait_until(lambda: delivery_count(group.deliveries, DeliveryStatus.DONE) >= count, WAIT,
               "every ping to be processed")
    return count / (time.perf_counter() - began), latencies


def _runs(group: Replicas, count: int) -> float:
    issue = group.fake.add_issue(FAKE_REPO, "Burst")
    sends = [lambda i=i: group[i % len(group)].deliver(
        "issue_comment", group.comment_event("/run trivial", issue=issue)[1])
        for i in range(count)]
    began = time.perf_counter()
    group.at_once(sends)
    group.runs_ended("trivial", count, WAIT)
    return count / (time.perf_counter() - began) * 60


def _adoption(group: Replicas, count: int) -> tuple[float, float]:
    """Start ``count`` long runs, SIGKILL the replica running the first: seconds
    to its adoption and to every one of its runs being taken over."""
    for index in range(count):
        group.comment(index % len(group), "/run long")
    wait_until(lambda: len(group.runs_of("long")) == count, WAIT, "the long runs")
    runs = group.runs_of("long")
    victim = group.running_on(runs[0].id)
    dead = group.owner_of(runs[0].id)
    mine = [r.id for r in runs if group.owner_of(r.id) == dead]
    killed = time.perf_counter()
    group.kill(victim)

    def adopted() -> bool:
        with group.engine.connect() as conn:
            return bool(conn.execute(text("SELECT adopted_by FROM replicas WHERE id = :id"),
                                     {"id": dead}).scalar_one_or_none())
    wait_until(adopted, WAIT, "the dead replica to be adopted", interval=0.05)
    adopted_s = time.perf_counter() - killed
    wait_until(lambda: all(group.owner_of(r) != dead or group.store.get_run(r).status.terminal
                           for r in mine), WAIT, "its runs to be taken over", interval=0.05)
    return adopted_s, time.perf_counter() - killed


def measure(count: int, server: str, args: argparse.Namespace) -> Figures:
    fake = fake_server()
    fake.add_collaborator(FAKE_REPO, "writer", "write")
    name = f"flowbot_bench_replicas_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, fresh_database(server, name) as url:
        group = Replicas(Path(tmp), fake, url, count, extra=DEFAULT_LEASES)
        try:
            group.sync({"flows/trivial.yml": TRIVIAL, "flows/long.yml": LONG})
            rate, latencies = _deliveries(group, args.n, args.c)
            runs = _runs(group, args.r)
            adopted = _adoption(group, args.k) if count > 1 else (None, None)
        finally:
            group.stop()
            fake.stop()
    cuts = statistics.quantiles(latencies, n=100)
    return Figures(count, rate, statistics.median(latencies) * 1000, cuts[98] * 1000, runs,
                   *adopted)


def _times(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base else "—"


def report(figures: list[Figures]) -> None:
    base = figures[0]
    print(f"{'replicas':>8} {'deliv/s':>9} {'vs one':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'runs/min':>9} {'vs one':>7} {'adopted s':>10} {'runs taken s':>13}")
    for f in figures:
        adopted = f"{f.adopted_s:.1f}" if f.adopted_s is not None else "—"
        taken = f"{f.taken_over_s:.1f}" if f.taken_over_s is not None else "—"
        print(f"{f.replicas:>8} {f.deliveries_per_s:>9.0f} "
              f"{_times(f.deliveries_per_s, base.deliveries_per_s):>7} "
              f"{f.intake_p50_ms:>7.1f} {f.intake_p99_ms:>7.1f} {f.runs_per_min:>9.0f} "
              f"{_times(f.runs_per_min, base.runs_per_min):>7} {adopted:>10} {taken:>13}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="signed ping deliveries")
    parser.add_argument("-c", type=int, default=16, help="concurrent senders")
    parser.add_argument("-r", type=int, default=30, help="trivial runs in the burst")
    parser.add_argument("-k", type=int, default=2, help="long runs before the SIGKILL")
    parser.add_argument("--counts", default="1,2,3", help="replica counts, the first the base")
    args = parser.parse_args()
    server = os.environ.get("FLOWBOT_TEST_POSTGRES_URL")
    if not server:
        parser.error("set FLOWBOT_TEST_POSTGRES_URL to a PostgreSQL server (./dev test starts one)")
    import docker

    client = docker.from_env()
    offline_images.ensure_image(client, offline_images.BUSYBOX)
    client.close()
    figures = [measure(int(n), server, args) for n in args.counts.split(",")]
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
