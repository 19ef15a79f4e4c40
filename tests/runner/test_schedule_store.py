"""The schedule store's contract, on SQLite and PostgreSQL: what the scheduler,
the bot and ``flowbot schedules`` rely on beyond the rows themselves."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from scheduling_support import T0, make_flow
from sqlalchemy.engine import Engine

from runner.errors import FlowNotFound
from runner.model.flows import CatchUp
from runner.scheduling.catchup import Decision
from runner.scheduling.fires import FireState
from runner.scheduling.registry import Registry
from runner.scheduling.schedule_store import Schedule, ScheduleStore
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from tests.clock import FakeClock

REPO = "acme/data"


def _store(engine: Engine, wake: threading.Event | None = None
           ) -> tuple[ScheduleStore, Registry, FakeClock]:
    clock = FakeClock(T0)
    store = SqlScheduleStore(engine, clock, instance_id="one", wake=wake)
    return store, Registry(engine, clock, schedules=store), clock


def test_listing_and_next_wakeup_follow_the_registry(db_engine: Engine) -> None:
    store, registry, _ = _store(db_engine)
    assert store.list() == [] and store.next_wakeup() is None
    registry.sync(REPO, "c1", [make_flow("b", {"cron": "0 * * * *"}),
                               make_flow("a", {"cron": "30 9 * * *", "catchup": "all"})])
    listed = store.list(REPO)
    assert [(s.flow_id, s.catchup, s.next_fire_at) for s in listed] == [
        ("a", CatchUp.ALL, T0 + timedelta(minutes=30)),
        ("b", CatchUp.LATEST, T0 + timedelta(hours=1)),
    ]
    assert store.next_wakeup() == T0 + timedelta(minutes=30)
    assert store.list("other/repo") == []


def test_pause_and_resume_wake_the_scheduler(db_engine: Engine) -> None:
    wake = threading.Event()
    store, registry, _ = _store(db_engine, wake)
    registry.sync(REPO, "c1", [make_flow("a", {"cron": "0 * * * *"})])
    store.pause(REPO, "a")
    assert wake.is_set() and store.next_wakeup() is None
    wake.clear()
    assert store.resume(REPO, "a") == 0
    assert wake.is_set() and store.next_wakeup() == T0 + timedelta(hours=1)
    with pytest.raises(FlowNotFound):
        store.pause(REPO, "nope")


def test_claim_records_the_plan_and_advances_once(db_engine: Engine) -> None:
    store, registry, _ = _store(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", {"cron": "0 * * * *"})])
    slot = T0 + timedelta(hours=1)
    seen: list[Schedule] = []

    def plan(due: Schedule) -> Decision:
        seen.append(due)
        return Decision((slot,), (), slot + timedelta(hours=1), slot)

    fires = store.claim(slot, plan, 10)
    assert [(f.flow_id, f.slot_at, f.state) for f in fires] == [("a", slot, FireState.FIRED)]
    assert [s.next_fire_at for s in seen] == [slot]
    assert store.claim(slot, plan, 10) == []  # advanced: nothing due any more
    assert store.next_wakeup() == slot + timedelta(hours=1)  # the plan's next fire
    assert store.reclaim(slot, timedelta(minutes=5), own=True) == fires  # never started
