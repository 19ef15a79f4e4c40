"""DST through the scheduler: a daily schedule in a skipped or repeated local
hour fires exactly once, by the rule in runner.scheduling.cron (gap → first valid minute
after it; repeated hour → first occurrence), in two zones and both directions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scheduling_support import RecordingSink, fire_rows, make_flow
from sqlalchemy.engine import Engine

from runner.scheduling.fires import as_utc
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from tests.clock import FakeClock


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


CASES = {
    # 02:30 does not exist on 29 March (CET→CEST at 01:00 UTC): fires at 03:00 CEST
    "berlin-spring": ("Europe/Berlin", "30 2 * * *", _utc(2026, 3, 27, 12), [
        _utc(2026, 3, 28, 1, 30), _utc(2026, 3, 29, 1, 0), _utc(2026, 3, 30, 0, 30)]),
    # 02:30 happens twice on 25 October (CEST→CET at 01:00 UTC): first one only
    "berlin-fall": ("Europe/Berlin", "30 2 * * *", _utc(2026, 10, 23, 12), [
        _utc(2026, 10, 24, 0, 30), _utc(2026, 10, 25, 0, 30), _utc(2026, 10, 26, 1, 30)]),
    # 02:30 does not exist on 8 March (EST→EDT at 07:00 UTC): fires at 03:00 EDT
    "new-york-spring": ("America/New_York", "30 2 * * *", _utc(2026, 3, 6, 12), [
        _utc(2026, 3, 7, 7, 30), _utc(2026, 3, 8, 7, 0), _utc(2026, 3, 9, 6, 30)]),
    # 02:30 is unambiguous on 1 November; the hour that repeats there is 01:xx
    "new-york-fall": ("America/New_York", "30 2 * * *", _utc(2026, 10, 30, 12), [
        _utc(2026, 10, 31, 6, 30), _utc(2026, 11, 1, 7, 30), _utc(2026, 11, 2, 7, 30)]),
    "new-york-fall-repeated-hour": ("America/New_York", "30 1 * * *", _utc(2026, 10, 30, 12), [
        _utc(2026, 10, 31, 5, 30), _utc(2026, 11, 1, 5, 30), _utc(2026, 11, 2, 6, 30)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_daily_schedule_fires_once_per_day_across_a_transition(
    db_engine: Engine, case: str
) -> None:
    tz, expr, start, expected = CASES[case]
    clock = FakeClock(start)
    Registry(db_engine, clock).sync("acme/data", "c1", [
        make_flow("daily", {"cron": expr, "timezone": tz})])
    sink = RecordingSink()
    scheduler = Scheduler(SqlScheduleStore(db_engine, clock, instance_id="one"), sink, clock)

    for _ in range(3 * 24 * 6):  # three days, a tick every 10 minutes
        clock.advance(600)
        scheduler.tick(clock.now())

    assert [f.slot_at for f in sink.fires] == expected
    assert [as_utc(r.slot_at) for r in fire_rows(db_engine)] == expected
    assert set(sink.calls.values()) == {1}
