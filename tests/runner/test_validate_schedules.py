"""runner.schedule_facts: the DST pre-filter never changes what dst_warnings says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner import cron
from runner.schedule_facts import cron_problem, local_shifted_ranges, schedule_facts

ZONES = [
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
    "America/Havana", "Africa/Casablanca", "Pacific/Chatham", "Europe/Dublin", "UTC",
    "Asia/Tokyo",
]
CRONS = [
    "30 2 * * *", "0 2 * * *", "59 1 * * *", "0 3 * * *", "15 0 * * *", "30 23 * * *",
    "*/15 * * * *", "0 * * * *", "45 1 * * 0", "0 10 * * *", "@daily", "0 2 1 * *",
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


def test_never_firing_schedule() -> None:
    assert schedule_facts("0 0 30 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC)) == (False, ())


@pytest.mark.parametrize(
    "expr",
    ["0 10 * * *", "61 * * * *", "* * * * * *", "@daily", "@reboot", "0 0 * 13 *", "1-5 * * * *",
     "*/0 * * * *", "0 0 L * *", "0 0 * * 7", "0 0 1,15 * MON-FRI", "x", "", "0 0 ? * *"],
)
def test_cached_cron_problem_matches_cron_check(expr: str) -> None:
    assert cron_problem(expr) == cron.check(expr)
