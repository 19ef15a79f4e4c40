"""Two scheduler instances on one PostgreSQL database, ticking in lockstep
through a simulated day of 1,000 schedules: every slot fires exactly once."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from scheduling_support import T0, RecordingSink, fire_rows, make_flow
from sqlalchemy.engine import Engine

from runner.model.flows import Flow
from runner.scheduling import cron
from runner.scheduling.fires import FireState, as_utc
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from tests.clock import FakeClock

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
DAY = timedelta(days=1)
STEP = timedelta(minutes=15)  # every tick has due slots, some up to 15 min late


def _flows(count: int) -> list[Flow]:
    rng = random.Random(5)
    flows = []
    for i in range(count):
        minute, hour = rng.randrange(60), rng.randrange(24)
        # ~4,000 slots in the day: a tenth hourly, the rest every 6 h or daily
        expr = (f"{minute} * * * *", f"{minute} */6 * * *", f"{minute} {hour} * * *",
                f"{minute} {hour} * * 1-5", f"{minute} */6 * * *")[min(i % 10, 4)]
        flows.append(make_flow(f"f{i:04}", {"cron": expr, "timezone": rng.choice(ZONES),
                                             "catchup": "all"}))
    return flows


def _expected(flows: list[Flow]) -> set[tuple[str, object]]:
    slots = set()
    for flow in flows:
        trig = flow.triggers[0]
        slot = cron.next_fire(trig.cron, trig.timezone, T0)
        while slot is not None and slot <= T0 + DAY:
            slots.add((flow.id, slot))
            slot = cron.next_fire(trig.cron, trig.timezone, slot)
    return slots


@pytest.mark.postgres
@pytest.mark.parametrize("db_engine", ["postgres"], indirect=True)
def test_two_instances_fire_every_slot_of_a_day_exactly_once(db_engine: Engine) -> None:
    flows = _flows(1000)
    Registry(db_engine, FakeClock(T0)).sync("acme/data", "c1", flows)
    sink = RecordingSink()
    steps = int(DAY / STEP)
    lockstep = threading.Barrier(2)
    errors: list[BaseException] = []

    def instance(name: str) -> None:
        clock = FakeClock(T0)
        store = SqlScheduleStore(db_engine, clock, instance_id=name)
        scheduler = Scheduler(store, sink, clock, misfire_grace=STEP.total_seconds())
        try:
            for step in range(1, steps + 1):
                lockstep.wait(timeout=60)
                now = T0 + step * STEP
                while scheduler.tick(now):
                    pass
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)
            lockstep.abort()

    threads = [threading.Thread(target=instance, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    expected = _expected(flows)
    rows = fire_rows(db_engine)
    assert {(r.flow_id, as_utc(r.slot_at)) for r in rows} == expected
    assert {r.state for r in rows} == {FireState.STARTED}
    assert len(sink.calls) == len(expected) and set(sink.calls.values()) == {1}
