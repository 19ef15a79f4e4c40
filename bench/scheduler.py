"""Scheduler benchmark: 10,000 schedules (mixed crons and timezones) over a
simulated period, next to a naive baseline measured in the same run.

flowbot: ticks at each earliest next fire (as run_forever does), reading only
due rows through the index. Baseline: the common naive design, ticking every
minute and scanning every schedule row, computing next fires with croniter on
aware datetimes, writing the same fire rows.

Fire lateness = (simulated tick time - slot) + the real time the scheduler took
to reach that fire within the tick. Also: CPU per fired slot (process_time),
registry sync of 10,000 flows (first and unchanged re-sync) against a per-row
upsert loop, and peak Python memory (tracemalloc, one simulated hour each).

    .venv/bin/python bench/scheduler.py [--hours 3] [--schedules 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from runner.model.flows import Flow, flow_from_data
from runner.scheduling.fires import as_utc, schedule_fires
from runner.scheduling.registry import Registry, registered_flows
from runner.scheduling.scheduler import Fire, Scheduler
from runner.scheduling.schedules import schedules
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from runner.state.db import connect

START = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata",
         "Australia/Sydney", "America/Los_Angeles", "Europe/London")


class SimClock:
    """Simulated time that also moves with real time spent inside a tick."""

    def __init__(self, start: datetime) -> None:
        self._base, self._mark = start, time.perf_counter()

    def jump(self, moment: datetime) -> None:
        self._base, self._mark = moment, time.perf_counter()

    def now(self) -> datetime:
        return self._base + timedelta(seconds=time.perf_counter() - self._mark)


class LatenessSink:
    def __init__(self, clock: SimClock) -> None:
        self.clock, self.lateness = clock, []  # type: ignore[var-annotated]

    def fire(self, fire: Fire) -> str | None:
        self.lateness.append((self.clock.now() - fire.slot_at).total_seconds())
        return f"run-{len(self.lateness)}"


def make_flows(count: int) -> list[Flow]:
    rng = random.Random(7)
    flows = []
    for i in range(count):
        minute, hour = rng.randrange(60), rng.randrange(24)
        expr = rng.choices(
            [f"{minute} * * * *", f"{minute % 15}-59/15 * * * *", f"{minute} */6 * * *",
             f"{minute} {hour} * * *", f"{minute} {hour} * * 1-5", "@hourly"],
            weights=[20, 5, 30, 30, 10, 5])[0]
        flows.append(flow_from_data({
            "id": f"flow-{i:05}", "tasks": [{"id": "t", "image": "busybox", "commands": ["true"]}],
            "triggers": [{"type": "schedule", "cron": expr, "timezone": rng.choice(ZONES),
                          "catchup": "all"}],
        }, f"flows/flow-{i:05}.yml"))
    return flows


def fresh_engine(url: str | None, tmp: Path, name: str) -> Engine:
    engine = connect(url or f"sqlite:///{tmp / name}.db")
    with engine.begin() as conn:
        for table in (schedule_fires, schedules, registered_flows):
            conn.execute(table.delete())
    return engine


def run_flowbot(engine: Engine, flows: list[Flow], hours: float) -> dict[str, Any]:
    clock = SimClock(START)
    Registry(engine, clock).sync("bench/repo", "c1", flows)
    sink = LatenessSink(clock)
    scheduler = Scheduler(SqlScheduleStore(engine, clock, instance_id="bench"), sink, clock)
    end = START + timedelta(hours=hours)
    cpu = time.process_time()
    while (earliest := scheduler.next_wakeup()) is not None and earliest <= end:
        clock.jump(earliest)
        while scheduler.tick(clock.now()):
            pass
    return {"cpu": time.process_time() - cpu, "lateness": sink.lateness}


def run_naive(engine: Engine, flows: list[Flow], hours: float) -> dict[str, Any]:
    """Tick every minute; scan all rows; croniter on aware datetimes."""
    clock = SimClock(START)
    Registry(engine, clock).sync("bench/repo", "c1", flows)
    sink = LatenessSink(clock)
    t = schedules.c
    cpu = time.process_time()
    for minute in range(1, int(hours * 60) + 1):
        clock.jump(START.replace(second=0) + timedelta(minutes=minute))
        now = clock.now()
        with engine.begin() as conn:
            rows = conn.execute(select(t.id, t.flow_id, t.cron, t.timezone, t.next_fire_at))
            due = [r for r in rows if as_utc(r.next_fire_at) <= now]
            for row in due:
                _naive_fire(conn, row, now, sink)
    return {"cpu": time.process_time() - cpu, "lateness": sink.lateness}


def _naive_fire(conn: Any, row: Any, now: datetime, sink: LatenessSink) -> None:
    slot = as_utc(row.next_fire_at)
    conn.execute(insert(schedule_fires).values(
        repo="bench/repo", flow_id=row.flow_id, trigger_id="schedule", slot_at=slot,
        state="started", reason="", inputs="{}", instance_id="naive", recorded_at=now))
    local = croniter(row.cron, now.astimezone(_zone(row.timezone)))
    nxt = local.get_next(datetime).astimezone(UTC)
    conn.execute(update(schedules).where(schedules.c.id == row.id).values(next_fire_at=nxt))
    sink.fire(Fire(0, "bench/repo", row.flow_id, "schedule", slot))


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def naive_sync(engine: Engine, flows: list[Flow]) -> None:
    """Baseline registry sync: one SELECT then INSERT or UPDATE per flow."""
    from runner.scheduling.registry import _row

    t = registered_flows.c
    now = START
    with engine.begin() as conn:
        for flow in flows:
            found = conn.execute(select(t.digest).where(
                t.repo == "naive/repo", t.flow_id == flow.id)).first()
            if found is None:
                conn.execute(insert(registered_flows).values(
                    **_row(flow, "c1"), repo="naive/repo", flow_id=flow.id,
                    registered_at=now, paused=False))
            elif found.digest != flow.digest:
                conn.execute(update(registered_flows).where(
                    t.repo == "naive/repo", t.flow_id == flow.id).values(**_row(flow, "c1")))


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def peak_memory(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else 0.0  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--database-url", help="default: a fresh SQLite file per measurement")
    args = parser.parse_args()
    flows = make_flows(args.schedules)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url = args.database_url
        engine = fresh_engine(url, tmp, "sync")
        registry = Registry(engine, SimClock(START))
        first = timed(lambda: registry.sync("bench/repo", "c1", flows))
        again = timed(lambda: registry.sync("bench/repo", "c2", flows))
        naive_first = timed(lambda: naive_sync(engine, flows))
        naive_again = timed(lambda: naive_sync(engine, flows))
        ours = run_flowbot(fresh_engine(url, tmp, "flowbot"), flows, args.hours)
        naive = run_naive(fresh_engine(url, tmp, "naive"), flows, args.hours)
        mem_ours = peak_memory(lambda: run_flowbot(fresh_engine(url, tmp, "m1"), flows, 1))
        mem_naive = peak_memory(lambda: run_naive(fresh_engine(url, tmp, "m2"), flows, 1))
    report(args, first, again, naive_first, naive_again, ours, naive, mem_ours, mem_naive)


def report(args: Any, first: float, again: float, naive_first: float, naive_again: float,
           ours: dict[str, Any], naive: dict[str, Any], mem_ours: float, mem_naive: float) -> None:
    print(f"{args.schedules} schedules, {args.hours:g} simulated hours")
    print(f"{'':34}{'flowbot':>14}{'naive baseline':>18}")
    rows = [
        ("registry sync, first (s)", first, naive_first),
        ("registry sync, unchanged (s)", again, naive_again),
        ("fired slots", len(ours["lateness"]), len(naive["lateness"])),
        ("fire lateness p50 (ms)", pct(ours["lateness"], 50) * 1e3,
         pct(naive["lateness"], 50) * 1e3),
        ("fire lateness p99 (ms)", pct(ours["lateness"], 99) * 1e3,
         pct(naive["lateness"], 99) * 1e3),
        ("CPU per fired slot (ms)", ours["cpu"] / max(1, len(ours["lateness"])) * 1e3,
         naive["cpu"] / max(1, len(naive["lateness"])) * 1e3),
        ("scheduler CPU total (s)", ours["cpu"], naive["cpu"]),
        ("peak Python memory, 1 h (MiB)", mem_ours, mem_naive),
    ]
    for label, mine, theirs in rows:
        print(f"{label:34}{mine:>14.3f}{theirs:>18.3f}")


if __name__ == "__main__":
    main()
