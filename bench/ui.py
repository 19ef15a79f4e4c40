"""Benchmark: the web UI's server time with 100,000 runs in the database.

Inserts ``--runs`` runs in bulk (SQLite, straight into the tables), then times
``/``, ``/runs?status=failed`` and ``/runs/{id}`` through the ASGI app in process
(Starlette's TestClient from this machine: the whole app, middleware included,
no network), p50/p99 over ``--requests`` each, next to baselines measured in
the same run: ``/healthz`` through the same app and a bare ``SELECT`` of the
rows ``/runs?status=failed`` shows. Target: p99 < 50 ms per page.

Then the run page's live log: the app served for real over HTTP on 127.0.0.1 (uvicorn
in a child process, so its CPU is the bot's alone), one run whose task is running,
and ``--viewers`` concurrent SSE clients (httpx, streaming) of ``/runs/{id}/live``
while this process appends a timestamped line to the task's log file every
``--interval`` seconds for ``--live-seconds``. Printed: the delay from a line
written to each viewer receiving it, p50/p99 (target p99 < 500 ms), lines lost,
and the bot's CPU over the window (utime + stime of the child from ``/proc``, as
a share of one core), next to the same with one viewer, measured in the same run.

    .venv/bin/python bench/ui.py [--runs 100000] [--requests 200]
        [--viewers 100] [--live-seconds 10] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.services import Services  # noqa: E402
from runner.running.logstore import log_path  # noqa: E402
from runner.state.db import connect  # noqa: E402
from runner.state.records import Status, Trigger, TriggerType  # noqa: E402
from runner.state.run_tables import run_tasks, runs  # noqa: E402
from tests.bot.ui_kit import MINE, NOW, PUBLIC, USER, free_port, ui_app, ui_services  # noqa: E402
from tests.fakes import TestClient  # noqa: E402
from tests.polling import wait_until  # noqa: E402

TARGET_MS = 50.0
LIVE_TARGET_MS = 500.0
FLOWS = ((MINE, "nightly"), (PUBLIC, "lint"))
STATUSES = (Status.SUCCESS,) * 6 + (Status.FAILED, Status.CANCELLED, Status.TIMED_OUT)


def fill(engine: Engine, count: int, chunk: int = 10_000) -> list[str]:
    """``count`` finished runs, one task each, a second apart; their ids."""
    rng = random.Random(12)
    ids = []
    with engine.begin() as conn:
        for start in range(0, count, chunk):
            rows, tasks = [], []
            for i in range(start, min(count, start + chunk)):
                repo, flow_id = FLOWS[i % len(FLOWS)]
                created = NOW - timedelta(seconds=count - i)
                status = rng.choice(STATUSES).value
                run_id = f"{i:010x}"
                ids.append(run_id)
                rows.append({
                    "id": run_id, "repo": repo, "flow_id": flow_id, "flow_digest": "d" * 64,
                    "flow_json": json.dumps({"id": flow_id, "tasks": []}),
                    "flow_path": f"flows/{flow_id}.yml", "commit": "a" * 40,
                    "trigger_type": "schedule", "trigger_actor": "hourly", "scheduled_at": None,
                    "inputs_json": "{}", "status": status, "error": None,
                    "failed_task": None, "created_at": created, "started_at": created,
                    "finished_at": created + timedelta(seconds=3), "request_key": None})
                tasks.append({"run_id": run_id, "task_id": "build", "position": 0,
                              "handler": False, "status": status, "attempts": 1})
            conn.execute(runs.insert(), rows)
            conn.execute(run_tasks.insert(), tasks)
    return ids


def timed(call: Callable[[], object], n: int) -> tuple[float, float]:
    """p50 and p99 of ``n`` calls, in milliseconds (after a few warm-up calls)."""
    for _ in range(5):
        call()
    took = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        took.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(took, n=100)
    return statistics.median(took), cuts[98]


def running_run(svc: Services) -> tuple[str, Path]:
    """A run of ``nightly`` whose task ``build`` is running; its log file."""
    registered = svc.registry.get(MINE, "nightly")
    assert registered is not None
    run = svc.store.create_run(registered.flow, repo=MINE, commit="a" * 40,
                               trigger=Trigger(TriggerType.MANUAL, USER), inputs={})
    path = log_path(svc.settings.data_dir, run.id, "build", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("starting\n")
    svc.store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED])
    svc.store.start_attempt(run.id, "build", 1, str(path))
    return run.id, path


def serve(data_dir: Path, port: int) -> None:
    """The child process: the bot's app over the bench's database, on loopback (no
    GitHub sign-in: loopback is let in), until it is terminated."""
    engine = connect(f"sqlite:///{data_dir / 'flowbot.db'}")
    uvicorn.run(ui_app(ui_services(engine, data_dir, None)), host="127.0.0.1", port=port,
                log_level="warning", lifespan="off")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; else None)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _viewer(client: httpx.AsyncClient, url: str, since: list[float],
                  delays: list[float], connected: list[int]) -> None:
    """One browser's stream: each ``tick`` line received, its delay since written
    (lines written before ``since[0]`` only mark the viewer as connected)."""
    event = ""
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200, (url, answer.status_code)
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "log":
                now = time.perf_counter()
                for text in json.loads(line[6:])["text"].splitlines():
                    word, _, written = text.partition(" ")
                    if word == "tick" and float(written) >= since[0]:
                        delays.append(now - float(written))
                    elif word == "starting":
                        connected[0] += 1


async def live(url: str, log: Path, pid: int, viewers: int, seconds: float,
               interval: float) -> tuple[list[float], int, float | None]:
    """``viewers`` streams while a line is appended every ``interval`` for ``seconds``:
    the delays seen, the lines written, and the bot's CPU share of one core."""
    delays: list[float] = []
    connected, since = [0], [float("inf")]
    limits = httpx.Limits(max_connections=viewers + 5)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30, read=None)) as client:
        streams = [asyncio.create_task(_viewer(client, url, since, delays, connected))
                   for _ in range(viewers)]
        deadline = time.perf_counter() + 60
        while connected[0] < viewers and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)  # every viewer has its log from the start
        assert connected[0] == viewers, f"only {connected[0]} of {viewers} viewers connected"
        cpu_before, start = cpu_seconds(pid), time.perf_counter()
        since[0], written = start, 0
        with log.open("a") as out:
            while time.perf_counter() - start < seconds:
                out.write(f"tick {time.perf_counter():.6f}\n")
                out.flush()
                written += 1
                await asyncio.sleep(interval)
        await asyncio.sleep(1.0)  # the last line's way to every viewer
        cpu_after, took = cpu_seconds(pid), time.perf_counter() - start
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    share = None if cpu_before is None or cpu_after is None else (
        cpu_after - cpu_before) / took
    return delays, written, share


def live_rows(data_dir: Path, svc: Services, viewers: int, seconds: float,
              interval: float) -> None:
    """The live-log figures: one viewer (the baseline), then ``viewers``."""
    run_id, log = running_run(svc)
    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir),
                              "--port", str(port)])
    try:
        def answering() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False
        wait_until(answering, 60, "the bot to listen", interval=0.1)
        url = f"http://127.0.0.1:{port}/runs/{run_id}/live"
        print(f"\nlive log over SSE: a line every {interval * 1000:.0f} ms for {seconds:.0f} s"
              f" (uvicorn on 127.0.0.1, pid {child.pid})")
        print(f"{'what':40} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'bot CPU':>8}")
        for count in (1, viewers):
            delays, written, share = asyncio.run(
                live(url, log, child.pid, count, seconds, interval))
            lost = written * count - len(delays)
            p50 = statistics.median(delays) * 1000
            p99 = statistics.quantiles(delays, n=100)[98] * 1000
            cpu = "n/a" if share is None else f"{share * 100:.0f}%"
            label = f"{'baseline: ' if count == 1 else ''}{count} viewer{'s' * (count > 1)}"
            verdict = "" if count == 1 else (
                "  ok" if p99 < LIVE_TARGET_MS else f"  over {LIVE_TARGET_MS:.0f} ms")
            print(f"{label:40} {p50:8.1f} {p99:8.1f} {lost:6} {cpu:>8}{verdict}")
        print("(bot CPU: the serving process's user + system time over the window, "
              "as a share of one core)")
    finally:
        child.terminate()
        child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    with tempfile.TemporaryDirectory() as tmp:
        engine = connect(f"sqlite:///{Path(tmp) / 'flowbot.db'}")
        svc = ui_services(engine, Path(tmp), None)
        start = time.perf_counter()
        ids = fill(engine, args.runs)
        print(f"inserted {len(ids):,} runs in {time.perf_counter() - start:.1f} s")
        client = TestClient(ui_app(svc))
        rng = random.Random(7)

        def get(path: str) -> Callable[[], object]:
            def call() -> object:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                return answer
            return call

        def some_run() -> object:
            return get(f"/runs/{rng.choice(ids)}")()

        def bare_select() -> object:
            return svc.store.runs_page(status=Status.FAILED, limit=51)

        rows = [("baseline: /healthz", get("/healthz")),
                ("baseline: bare SELECT (failed page)", bare_select),
                ("/", get("/")), ("/runs?status=failed", get("/runs?status=failed")),
                ("/runs/{id}", some_run)]
        print(f"{'what':40} {'p50 ms':>8} {'p99 ms':>8}")
        for label, call in rows:
            p50, p99 = timed(call, args.requests)
            verdict = "" if label.startswith("baseline") else (
                "  ok" if p99 < TARGET_MS else f"  over {TARGET_MS:.0f} ms")
            print(f"{label:40} {p50:8.1f} {p99:8.1f}{verdict}")
        live_rows(Path(tmp), svc, args.viewers, args.live_seconds, args.interval)


if __name__ == "__main__":
    main()
