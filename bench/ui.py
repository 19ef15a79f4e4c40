"""Benchmark: the web UI's server time with 100,000 runs in the database.

Inserts ``--runs`` runs in bulk (SQLite, straight into the tables), then times
``/``, ``/runs?status=failed`` and ``/runs/{id}`` through the ASGI app in process
(Starlette's TestClient from this machine: the whole app, middleware included,
no network), p50/p99 over ``--requests`` each, next to baselines measured in
the same run: ``/healthz`` through the same app and a bare ``SELECT`` of the
rows ``/runs?status=failed`` shows. Target: p99 < 50 ms per page.

    .venv/bin/python bench/ui.py [--runs 100000] [--requests 200]

The 100 live-log viewers over SSE are measured by the run page's own bench part.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.state.db import connect  # noqa: E402
from runner.state.records import Status  # noqa: E402
from runner.state.run_tables import run_tasks, runs  # noqa: E402
from tests.bot.ui_kit import MINE, NOW, PUBLIC, ui_app, ui_services  # noqa: E402
from tests.fakes import TestClient  # noqa: E402

TARGET_MS = 50.0
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
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
        print("(SSE viewers of a running task's log: measured by the run page's bench part)")


if __name__ == "__main__":
    main()
