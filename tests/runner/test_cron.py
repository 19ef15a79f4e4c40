"""Cron checks, fire times and the DST rule of runner/scheduling/cron.py."""

from datetime import UTC, datetime

import pytest

from runner.scheduling import cron
from tests.clock import FakeClock


def local(instants: list[datetime], tz: str) -> list[str]:
    return [i.astimezone(cron.zone(tz)).strftime("%Y-%m-%d %H:%M%z") for i in instants]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* 25 * * *", 'field 2 (hour) "25" is not valid; allowed: 0-23'),
        ("61 * * * *", 'field 1 (minute) "61" is not valid; allowed: 0-59'),
        ("0 0 * 13 *", 'field 4 (month) "13" is not valid; allowed: 1-12 or jan-dec'),
        ("0 0 * * 8", 'field 5 (day of week) "8" is not valid; allowed: 0-6 or sun-sat'),
        ("1 2 3", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"),
        ("@often", 'unknown macro "@often"; use one of '
         "@annually, @daily, @hourly, @midnight, @monthly, @weekly, @yearly"),
    ],
)
def test_check_names_the_wrong_field(expr: str, message: str) -> None:
    assert cron.check(expr) == message


def test_seconds_field_is_refused() -> None:
    message = cron.check("*/10 * * * * *")
    assert message is not None and "seconds field is not supported" in message


@pytest.mark.parametrize("expr", ["0 10 * * *", "@daily", "*/15 9-17 * * mon-fri", "0 0 1 jan *"])
def test_valid_expressions_pass(expr: str) -> None:
    assert cron.check(expr) is None


def test_an_expression_that_never_fires_has_no_next_fire() -> None:
    assert cron.next_fire("0 0 30 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_fire_times_are_in_the_schedule_timezone() -> None:
    after = datetime(2026, 6, 1, 12, tzinfo=UTC)
    times = cron.fire_times("0 10 * * *", "Asia/Tokyo", after, 2)
    assert local(times, "Asia/Tokyo") == ["2026-06-02 10:00+0900", "2026-06-03 10:00+0900"]
    assert all(t.tzinfo == UTC for t in times)


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        ("Europe/Berlin", datetime(2027, 3, 27, 12, tzinfo=UTC),
         ["2027-03-28 03:00+0200", "2027-03-29 02:30+0200"]),
        ("America/New_York", datetime(2027, 3, 13, 12, tzinfo=UTC),
         ["2027-03-14 03:00-0400", "2027-03-15 02:30-0400"]),
    ],
)
def test_slot_in_skipped_hour_fires_once_after_the_gap(
    tz: str, after: datetime, expected: list[str]
) -> None:
    assert local(cron.fire_times("30 2 * * *", tz, after, 2), tz) == expected


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        ("Europe/Berlin", datetime(2027, 10, 30, 12, tzinfo=UTC),
         ["2027-10-31 02:30+0200", "2027-11-01 02:30+0100"]),
        ("America/New_York", datetime(2027, 11, 6, 12, tzinfo=UTC),
         ["2027-11-07 01:30-0400", "2027-11-08 01:30-0500"]),
    ],
)
def test_slot_in_repeated_hour_fires_once_at_first_occurrence(
    tz: str, after: datetime, expected: list[str]
) -> None:
    expr = "30 2 * * *" if tz == "Europe/Berlin" else "30 1 * * *"
    assert local(cron.fire_times(expr, tz, after, 2), tz) == expected


def test_several_slots_in_a_gap_merge_into_one_fire() -> None:
    times = cron.fire_times("*/20 2-3 * * *", "Europe/Berlin", datetime(2027, 3, 28, tzinfo=UTC), 3)
    assert local(times, "Europe/Berlin") == [
        "2027-03-28 03:00+0200", "2027-03-28 03:20+0200", "2027-03-28 03:40+0200",
    ]


def test_starting_inside_a_repeated_hour_never_returns_an_earlier_instant() -> None:
    # 01:30 EDT is the first pass of the repeated hour; start during the second pass
    after = datetime(2027, 11, 7, 6, 10, tzinfo=UTC)  # 01:10 EST (second pass)
    times = cron.fire_times("*/20 * * * *", "America/New_York", after, 2)
    assert times[0] > after


def test_due_slots_lists_every_instant() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    slots, following = cron.due_slots("0 * * * *", "UTC", start,
                                      datetime(2026, 1, 4, tzinfo=UTC), 1000)
    assert len(slots) == 73 and slots[0] == start and slots[-1] == datetime(2026, 1, 4, tzinfo=UTC)
    assert following == datetime(2026, 1, 4, 1, tzinfo=UTC)


def test_dst_warnings_name_the_dates() -> None:
    warnings = cron.dst_warnings("30 2 * * *", "Europe/Berlin", datetime(2027, 1, 1, tzinfo=UTC))
    assert warnings == [
        "2027-03-28 02:30 does not exist in Europe/Berlin (clocks go forward); "
        "that slot fires once at 03:00",
        "2027-10-31 02:30 happens twice in Europe/Berlin (clocks go back); "
        "that slot fires once, at its first occurrence",
    ]
    assert cron.dst_warnings("0 10 * * *", "Europe/Berlin", datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_unknown_timezone_is_a_plain_error() -> None:
    with pytest.raises(ValueError, match='unknown timezone "Mars/Olympus"'):
        cron.zone("Mars/Olympus")


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
