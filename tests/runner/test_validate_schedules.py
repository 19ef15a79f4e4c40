"""runner.validation.schedule_facts: the DST pre-filter never changes what dst_warnings says;
runner.scheduling.cron.dst_warnings, which only walks slots in skipped or repeated ranges,
says what walking every slot of each transition day says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from runner.scheduling import cron
from runner.validation.schedule_facts import cron_problem, local_shifted_ranges, schedule_facts

ZONES = [
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
    "America/Havana", "Africa/Casablanca", "Pacific/Chatham", "Europe/Dublin", "UTC",
    "Asia/Tokyo",
]
CRONS = [
    "30 2 * * *", "0 2 * * *", "59 1 * * *", "0 3 * * *", "15 0 * * *", "30 23 * * *",
    "*/15 * * * *", "0 * * * *", "45 1 * * 0", "0 10 * * *", "@daily", "0 2 1 * *",
    "30 1,2 * * *", "0 9,14 * * 1-5", "0 0 29 2 *", "0 12 31 * *", "@yearly", "0 2-3 * * *",
]
STARTS = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 29, 0, 30, tzinfo=UTC)]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("now", STARTS, ids=lambda d: d.date().isoformat())
def test_prefilter_agrees_with_dst_warnings(tz: str, now: datetime) -> None:
    for expr in CRONS:
        fires, warnings = schedule_facts(expr, tz, now)
        assert fires
        assert list(warnings) == cron.dst_warnings(expr, tz, now), (expr, tz)


def test_shifted_ranges_of_berlin_2026() -> None:
    ranges = local_shifted_ranges("Europe/Berlin", datetime(2026, 1, 1, tzinfo=UTC))
    assert [(a.isoformat(), b.isoformat()) for a, b in ranges] == [
        ("2026-03-29T02:00:00", "2026-03-29T03:00:00"),
        ("2026-10-25T02:00:00", "2026-10-25T03:00:00"),
    ]


def test_zones_without_dst_have_no_ranges() -> None:
    assert local_shifted_ranges("Asia/Tokyo", datetime(2026, 1, 1, tzinfo=UTC)) == ()
    assert local_shifted_ranges("UTC", datetime(2026, 1, 1, tzinfo=UTC)) == ()


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6 *"])
def test_never_firing_schedule(expr: str) -> None:
    assert schedule_facts(expr, "UTC", datetime(2026, 1, 1, tzinfo=UTC)) == (False, ())


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "Australia/Lord_Howe"])
def test_fires_agrees_with_the_next_fire_time(tz: str) -> None:
    """schedule_facts settles "it fires" from the fields where it can; never differently."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for expr in [*CRONS, "0 0 30 2 *", "0 0 31 4 *", "0 0 29 2 1"]:
        assert schedule_facts(expr, tz, now)[0] == (cron.next_fire(expr, tz, now) is not None)


@pytest.mark.parametrize(
    "expr",
    ["0 10 * * *", "61 * * * *", "* * * * * *", "@daily", "@reboot", "0 0 * 13 *", "1-5 * * * *",
     "*/0 * * * *", "0 0 L * *", "0 0 * * 7", "0 0 1,15 * MON-FRI", "x", "", "0 0 ? * *"],
)
def test_cached_cron_problem_matches_cron_check(expr: str) -> None:
    assert cron_problem(expr) == cron.check(expr)


def _every_slot_warnings(expr: str, tz: str, start: datetime) -> list[str]:
    """dst_warnings as first written: every slot of each window, checked one by one."""
    zone = ZoneInfo(tz)
    gap = timedelta(hours=3)
    found = []
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(366):
        next_day = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != next_day.astimezone(zone).utcoffset():
            local_from = (day - gap).astimezone(zone).replace(tzinfo=None)
            local_to = (next_day + gap).astimezone(zone).replace(tzinfo=None)
            slots = croniter(cron.expand(expr), local_from)
            while (local := slots.get_next(datetime)) <= local_to:
                if not cron._exists(local, zone):
                    fired = cron.to_instant(local, zone).astimezone(zone)
                    found.append(
                        f"{local:%Y-%m-%d %H:%M} does not exist in {tz} (clocks go forward); "
                        f"that slot fires once at {fired:%H:%M}"
                    )
                elif cron._repeated(local, zone):
                    found.append(
                        f"{local:%Y-%m-%d %H:%M} happens twice in {tz} (clocks go back); "
                        "that slot fires once, at its first occurrence"
                    )
        day = next_day
    return found


@pytest.mark.parametrize("tz", ZONES)
def test_dst_warnings_equal_walking_every_slot(tz: str) -> None:
    for now in (*STARTS, datetime(2026, 10, 24, 22, 30, tzinfo=UTC)):
        for expr in CRONS:
            assert cron.dst_warnings(expr, tz, now) == _every_slot_warnings(expr, tz, now), expr
