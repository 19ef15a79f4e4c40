"""The scheduler: due slots fire once, catch-up policies, a stepped-back clock,
what the sink answers, and the sleeping loop."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from scheduling_support import T0, RecordingSink, fire_rows, make_flow, schedule_row
from sqlalchemy.engine import Engine

from runner.errors import FireDeclined, InputError
from runner.scheduling.fires import FireState, SkipReason, as_utc
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Fire, Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from tests.clock import FakeClock

REPO = "acme/data"


def _world(engine: Engine, *flows: object) -> tuple[Scheduler, RecordingSink, FakeClock]:
    clock = FakeClock(T0)
    Registry(engine, clock).sync(REPO, "c1", list(flows))  # type: ignore[arg-type]
    sink = RecordingSink()
    store = SqlScheduleStore(engine, clock, instance_id="one")
    return Scheduler(store, sink, clock), sink, clock


def test_a_due_slot_fires_once_with_its_inputs(db_engine: Engine) -> None:
    flow = make_flow("a", {"cron": "*/15 * * * *", "inputs": {"size": 3}})
    scheduler, sink, clock = _world(db_engine, flow)
    assert scheduler.tick(clock.now()) == []  # 09:00 itself is not after registration

    clock.advance(15 * 60)
    fires = scheduler.tick(clock.now())
    again = scheduler.tick(clock.now())

    assert again == []
    assert [(f.slot_at, f.inputs, f.state, f.run_id) for f in fires] == [
        (T0 + timedelta(minutes=15), {"size": 3}, FireState.STARTED, "run-1")]
    assert sink.calls == {fires[0].key: 1}
    row = schedule_row(db_engine, "a")
    assert as_utc(row.next_fire_at) == T0 + timedelta(minutes=30)
    assert (as_utc(row.last_fire_at), row.last_run_id) == (fires[0].slot_at, "run-1")
    assert scheduler.next_wakeup() == T0 + timedelta(minutes=30)


def test_a_stepped_back_clock_never_fires_a_slot_again(db_engine: Engine) -> None:
    scheduler, sink, clock = _world(db_engine, make_flow("a", {"cron": "0 * * * *"}))
    clock.set(T0 + timedelta(hours=1))
    scheduler.tick(clock.now())

    clock.set(T0 - timedelta(hours=3))  # NTP step back
    Registry(db_engine, clock).sync(REPO, "c2", [make_flow("a", {"cron": "0 */2 * * *"})])
    for minutes in range(0, 7 * 60 + 1, 10):  # 06:00 .. 13:00
        clock.set(T0 - timedelta(hours=3) + timedelta(minutes=minutes))
        scheduler.tick(clock.now())

    slots = [as_utc(r.slot_at) for r in fire_rows(db_engine)]
    assert slots == [T0 + timedelta(hours=1), T0 + timedelta(hours=3)]
    assert all(count == 1 for count in sink.calls.values())


@pytest.mark.parametrize(
    ("policy", "ran", "skipped", "reason"),
    [
        ("none", [], [1, 2, 3, 4, 5], SkipReason.CATCHUP_NONE),
        ("latest", [5], [1, 2, 3, 4], SkipReason.CATCHUP_LATEST),
        ("all", [3, 4, 5], [1, 2], SkipReason.CATCHUP_LIMIT),
    ],
)
def test_catch_up_after_downtime_follows_the_policy(
    db_engine: Engine, policy: str, ran: list[int], skipped: list[int], reason: SkipReason
) -> None:
    flow = make_flow("a", {"cron": "0 * * * *", "catchup": policy, "catchup_limit": 3})
    scheduler, sink, clock = _world(db_engine, flow)
    clock.advance(5 * 3600 + 600)  # down from 09:00 to 14:10: slots 10:00..14:00 missed

    fires = scheduler.tick(clock.now())

    def hours(state: FireState) -> list[int]:
        return [(f.slot_at - T0) // timedelta(hours=1) for f in fires if f.state is state]

    assert (hours(FireState.STARTED), hours(FireState.SKIPPED)) == (ran, skipped)
    assert {f.reason for f in fires if f.state is FireState.SKIPPED} <= {reason.value}
    assert len(fire_rows(db_engine)) == 5  # every slot is recorded, run or not
    assert len(sink.calls) == len(ran)


def test_an_on_time_slot_runs_under_every_policy(db_engine: Engine) -> None:
    flows = [make_flow(p, {"cron": "0 * * * *", "catchup": p}) for p in ("none", "latest", "all")]
    scheduler, sink, clock = _world(db_engine, *flows)
    clock.advance(3600 + 30)  # 30 s late is within the misfire grace

    fires = scheduler.tick(clock.now())

    assert sorted(f.flow_id for f in fires if f.state is FireState.STARTED) == [
        "all", "latest", "none"]


@pytest.mark.parametrize(
    ("late", "runs"),
    [(timedelta(seconds=60), True), (timedelta(seconds=60, microseconds=1), False)],
)
def test_catchup_none_runs_a_slot_up_to_60_s_late_and_skips_it_after(
    db_engine: Engine, late: timedelta, runs: bool
) -> None:
    """The boundary docs/flows.md ("Missed slots") promises: 60 s late is on time."""
    scheduler, sink, clock = _world(db_engine, make_flow("a", {"cron": "0 * * * *",
                                                                "catchup": "none"}))
    clock.set(T0 + timedelta(hours=1) + late)  # down over 10:00, back `late` after it

    fires = scheduler.tick(clock.now())

    assert [(f.slot_at, f.state, f.reason) for f in fires] == [
        (T0 + timedelta(hours=1), FireState.STARTED, "") if runs
        else (T0 + timedelta(hours=1), FireState.SKIPPED, SkipReason.CATCHUP_NONE.value)]
    assert len(sink.calls) == int(runs)


def test_long_downtime_is_caught_up_in_bounded_chunks(db_engine: Engine) -> None:
    flow = make_flow("a", {"cron": "* * * * *", "catchup": "all", "catchup_limit": 2})
    scheduler, sink, clock = _world(db_engine, flow)
    clock.advance(6 * 24 * 3600)  # 8,640 minutely slots missed

    while scheduler.tick(clock.now()):
        pass

    rows = fire_rows(db_engine)
    assert len(rows) == 6 * 24 * 60
    assert [as_utc(r.slot_at) for r in rows if r.state == FireState.STARTED] == [
        clock.now() - timedelta(minutes=1), clock.now()]


class _Answers:
    """A sink that declines one flow and refuses another."""

    def fire(self, fire: Fire) -> str | None:
        if fire.flow_id == "busy":
            return None
        if fire.flow_id == "full":
            raise FireDeclined("concurrency limit 1 reached (policy skip)", "run-9")
        raise InputError("size", "expected an int")


def test_declined_and_refused_fires_are_recorded(db_engine: Engine) -> None:
    clock = FakeClock(T0)
    Registry(db_engine, clock).sync(REPO, "c1", [
        make_flow("busy", {"cron": "0 * * * *"}), make_flow("bad", {"cron": "0 * * * *"}),
        make_flow("full", {"cron": "0 * * * *"})])
    scheduler = Scheduler(SqlScheduleStore(db_engine, clock, instance_id="one"), _Answers(), clock)
    clock.advance(3600)

    fires = {f.flow_id: f for f in scheduler.tick(clock.now())}

    assert (fires["busy"].state, fires["busy"].reason) == (
        FireState.SKIPPED, SkipReason.DECLINED.value)
    assert fires["bad"].state is FireState.FAILED and "size" in fires["bad"].reason
    assert (fires["full"].state, fires["full"].run_id) == (FireState.SKIPPED, "run-9")
    stored = {r.flow_id: (r.state, r.reason) for r in fire_rows(db_engine)}
    assert stored["full"] == ("skipped", "concurrency limit 1 reached (policy skip)")
    assert {k: v[0] for k, v in stored.items()} == {
        "busy": "skipped", "bad": "failed", "full": "skipped"}
    assert scheduler.recover() == []  # nothing left to start


def test_run_forever_sleeps_until_due_and_wakes_on_registry_change(sqlite_engine: Engine) -> None:
    clock = FakeClock(T0)
    wake = threading.Event()
    registry = Registry(sqlite_engine, clock, wake=wake)
    sink = RecordingSink()
    store = SqlScheduleStore(sqlite_engine, clock, instance_id="one")
    scheduler = Scheduler(store, sink, clock, wake=wake)
    stop = threading.Event()
    loop = threading.Thread(target=scheduler.run_forever, args=(stop,))
    loop.start()
    try:
        registry.sync(REPO, "c1", [make_flow("a", {"cron": "* * * * *"})])  # sets wake
        clock.advance(60)
        scheduler.wake()
        assert sink.fired.wait(10)
    finally:
        stop.set()
        scheduler.wake()
        loop.join(10)
    assert not loop.is_alive()
    assert list(sink.calls.values()) == [1]
