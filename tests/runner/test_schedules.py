"""Schedule rows follow the registry; pause and resume record what they skip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scheduling_support import T0, RecordingSink, fire_rows, make_flow, schedule_row
from sqlalchemy.engine import Engine

from runner.errors import FlowNotFound, ScheduleError
from runner.scheduling.fires import FireState, SkipReason, as_utc
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from tests.clock import FakeClock

REPO = "acme/data"
HOURLY = {"cron": "0 * * * *"}


def _setup(engine: Engine) -> tuple[Registry, SqlScheduleStore, FakeClock]:
    clock = FakeClock(T0)
    return Registry(engine, clock), SqlScheduleStore(engine, clock), clock


def test_registering_creates_rows_with_the_first_slot(db_engine: Engine) -> None:
    registry, _, _ = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", {**HOURLY, "inputs": {"day": "mon"}})])

    row = schedule_row(db_engine, "a")
    assert as_utc(row.next_fire_at) == T0 + timedelta(hours=1)
    assert (row.cron, row.timezone, row.inputs, row.enabled) == (
        "0 * * * *", "UTC", '{"day": "mon"}', True)


def test_reregistering_an_unchanged_trigger_keeps_its_next_fire(db_engine: Engine) -> None:
    registry, _, clock = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", {"cron": "0 12 * * *"})])
    first = schedule_row(db_engine, "a").next_fire_at
    clock.advance(3600)

    # same flow, and a changed flow whose trigger did not change
    registry.sync(REPO, "c2", [make_flow("a", {"cron": "0 12 * * *"})])
    registry.sync(REPO, "c3", [make_flow("a", {"cron": "0 12 * * *"}, description="x")])

    assert schedule_row(db_engine, "a").next_fire_at == first


def test_changed_cron_or_timezone_recomputes_from_now(db_engine: Engine) -> None:
    registry, _, clock = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", {"cron": "0 12 * * *"})])
    clock.advance(4 * 3600)  # 13:00 UTC

    registry.sync(REPO, "c2", [make_flow("a", {"cron": "30 * * * *"})])
    assert as_utc(schedule_row(db_engine, "a").next_fire_at) == T0 + timedelta(hours=4, minutes=30)

    registry.sync(REPO, "c3", [make_flow("a", {"cron": "30 * * * *", "timezone": "Asia/Kolkata"})])
    # Kolkata is UTC+05:30: local :30 slots are whole UTC hours
    assert as_utc(schedule_row(db_engine, "a").next_fire_at) == T0 + timedelta(hours=5)


def test_removed_trigger_or_flow_stops_firing(db_engine: Engine) -> None:
    registry, _, clock = _setup(db_engine)
    registry.sync(REPO, "c1", [
        make_flow("a", {"id": "one", **HOURLY}, {"id": "two", **HOURLY}), make_flow("b", HOURLY),
    ])
    registry.sync(REPO, "c2", [make_flow("a", {"id": "one", **HOURLY})])
    clock.advance(3 * 3600)

    store = SqlScheduleStore(db_engine, clock, instance_id="i")
    fires = Scheduler(store, RecordingSink(), clock).tick(clock.now())

    assert {(f.flow_id, f.trigger_id) for f in fires} == {("a", "one")}
    assert schedule_row(db_engine, "a", "two") is None and schedule_row(db_engine, "b") is None


def test_disabled_trigger_has_no_next_fire_until_enabled_again(db_engine: Engine) -> None:
    registry, _, clock = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", {**HOURLY, "enabled": False})])
    assert schedule_row(db_engine, "a").next_fire_at is None
    clock.advance(5400)  # 10:30

    registry.sync(REPO, "c2", [make_flow("a", HOURLY)])

    assert as_utc(schedule_row(db_engine, "a").next_fire_at) == T0 + timedelta(hours=2)


def test_pause_stops_firing_and_resume_records_the_missed_slots(db_engine: Engine) -> None:
    registry, schedules, clock = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", HOURLY), make_flow("b", HOURLY)])
    store = SqlScheduleStore(db_engine, clock, instance_id="i")
    scheduler = Scheduler(store, RecordingSink(), clock)

    schedules.pause(REPO, "a")
    assert registry.get(REPO, "a").paused  # type: ignore[union-attr]
    clock.advance(3 * 3600 + 600)  # 12:10: slots 10:00, 11:00, 12:00 passed
    fired = scheduler.tick(clock.now())
    assert {f.flow_id for f in fired} == {"b"}

    assert schedules.resume(REPO, "a") == 3
    skipped = fire_rows(db_engine, flow_id="a")
    assert [as_utc(r.slot_at).hour for r in skipped] == [10, 11, 12]
    assert {(r.state, r.reason) for r in skipped} == {(FireState.SKIPPED, SkipReason.PAUSED)}
    assert as_utc(schedule_row(db_engine, "a").next_fire_at) == T0 + timedelta(hours=4)
    assert not registry.get(REPO, "a").paused  # type: ignore[union-attr]


def test_a_flow_changed_while_paused_stays_paused(db_engine: Engine) -> None:
    registry, schedules, _ = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("a", HOURLY)])
    schedules.pause(REPO, "a")

    registry.sync(REPO, "c2", [make_flow("a", HOURLY, {"id": "more", "cron": "*/5 * * * *"})])

    for trigger in ("schedule", "more"):
        row = schedule_row(db_engine, "a", trigger)
        assert row.paused and row.next_fire_at is None and row.held_fire_at is not None


def test_pausing_an_unknown_flow_names_the_known_ones(db_engine: Engine) -> None:
    registry, schedules, _ = _setup(db_engine)
    registry.sync(REPO, "c1", [make_flow("nightly", HOURLY)])

    with pytest.raises(FlowNotFound) as caught:
        schedules.pause(REPO, "nighty")
    assert caught.value.known == ["nightly"]
    with pytest.raises(FlowNotFound):
        schedules.resume(REPO, "nighty")


def test_a_trigger_with_an_unknown_timezone_is_a_clear_error_and_changes_nothing(
    sqlite_engine: Engine,
) -> None:
    registry, _, _ = _setup(sqlite_engine)

    with pytest.raises(ScheduleError, match='flows/a.yml: flow "a", trigger "schedule": unknown'):
        registry.sync(REPO, "c1", [make_flow("a", {**HOURLY, "timezone": "Mars/Olympus"})])
    assert registry.list(REPO) == []
