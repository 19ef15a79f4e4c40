"""Benchmark: task log throughput of the two log stores, in one run.

Writes ``--mb`` MB of log lines (in 8 KiB chunks, as a busy task's stream
delivers them) through :func:`runner.running.logstore.collect` with one secret
to mask, into :class:`FileLogs` (the SQLite default: files under the data dir,
the baseline) and into :class:`DbLogs` (chunks in PostgreSQL, each writer
appending all its pending 64 KiB chunks in one transaction), then reads each
log back whole (the raw download's bounded reads). Prints MB/s of each next to
the file baseline and the peak Python memory while writing (the store must not
hold the log). PostgreSQL comes from ``FLOWBOT_BENCH_POSTGRES_URL`` (else
``FLOWBOT_TEST_POSTGRES_URL``): a scratch database is created and dropped.

    .venv/bin/python bench/logs.py [--mb 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.clock import SystemClock  # noqa: E402
from runner.model.flows import flow_from_data  # noqa: E402
from runner.running.dblogs import DbLogs  # noqa: E402
from runner.running.logstore import FileLogs, LogKey, LogStore, collect  # noqa: E402
from runner.state.db import connect  # noqa: E402
from runner.state.records import Trigger, TriggerType  # noqa: E402
from runner.state.store import RunStore  # noqa: E402

CHUNK = 8 * 1024
SECRET = "bench-s3cret-value"
FLOW = flow_from_data({"id": "bench", "tasks": [
    {"id": "loud", "image": "busybox", "commands": ["true"]}]}, path="flows/bench.yml")


def chunks(total: int) -> Iterator[bytes]:
    line = b"2026-01-01T00:00:00Z step 0000042 compiling module foo/bar/baz.py ok\n"
    block = line * (CHUNK // len(line))
    for _ in range(total // len(block)):
        yield block


def measure(name: str, logs: LogStore, key: LogKey, total: int) -> dict[str, float]:
    start = time.perf_counter()
    result = collect(chunks(total), logs, key, [SECRET], max_bytes=total * 2)
    wrote = time.perf_counter() - start
    assert result.error is None, result.error
    start = time.perf_counter()
    read = sum(len(part) for part in logs.iterate(key))
    took = time.perf_counter() - start
    assert read == result.stored, (name, read, result.stored)
    tracemalloc.start()  # a second, shorter pass for memory (tracing slows it down)
    collect(chunks(min(total, 20 << 20)), logs, key, [SECRET], max_bytes=total * 2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mb = result.stored / 1e6
    return {"write": mb / wrote, "read": mb / took, "peak": peak / 1024, "mb": mb}


def with_postgres(body: Callable[[str], None]) -> None:
    base = os.environ.get("FLOWBOT_BENCH_POSTGRES_URL") or os.environ.get(
        "FLOWBOT_TEST_POSTGRES_URL")
    if not base:
        raise SystemExit("set FLOWBOT_BENCH_POSTGRES_URL (or FLOWBOT_TEST_POSTGRES_URL)")
    name = f"flowbot_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        body(make_url(base).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="MB of log per store")
    args = parser.parse_args()
    total = args.mb * 1_000_000
    figures: dict[str, dict[str, float]] = {}

    def run(url: str) -> None:
        engine = connect(url)
        store = RunStore(engine, SystemClock())
        run_id = store.create_run(FLOW, repo="bench/logs", commit=None,
                                  trigger=Trigger(TriggerType.CLI, "bench"), inputs={}).id
        key = LogKey(run_id, "loud", 1)
        with tempfile.TemporaryDirectory() as tmp:
            figures["FileLogs (files, baseline)"] = measure("files", FileLogs(Path(tmp)), key,
                                                            total)
        figures["DbLogs (PostgreSQL chunks)"] = measure("database", DbLogs(engine), key, total)
        engine.dispose()

    with_postgres(run)
    base = figures["FileLogs (files, baseline)"]
    print(f"{args.mb} MB of log lines in {CHUNK // 1024} KiB chunks, one secret masked")
    print(f"{'store':<28} {'write MB/s':>11} {'vs files':>9} {'read MB/s':>10} "
          f"{'vs files':>9} {'peak KiB':>9}")
    for name, got in figures.items():
        print(f"{name:<28} {got['write']:>11.1f} {got['write'] / base['write']:>8.2f}x "
              f"{got['read']:>10.1f} {got['read'] / base['read']:>8.2f}x {got['peak']:>9.0f}")


if __name__ == "__main__":
    main()
