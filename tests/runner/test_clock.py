"""The rehearsal clock ``FLOWBOT_CLOCK`` names: parsed, refused when malformed,
and agreeing across clocks given the same value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runner.clock import ScaledClock, SystemClock, clock_from_setting, real_seconds
from runner.errors import ConfigError


def test_empty_is_the_real_clock() -> None:
    assert isinstance(clock_from_setting(""), SystemClock)
    assert real_seconds(SystemClock(), 90) == 90


def test_a_scaled_clock_starts_at_its_anchor_and_runs_rate_times_as_fast() -> None:
    real = [1000.0]
    clock = ScaledClock(datetime(2026, 3, 7, tzinfo=UTC), 1000.0, 720, real=lambda: real[0])
    assert clock.now() == datetime(2026, 3, 7, tzinfo=UTC)
    real[0] += 5
    assert clock.now() == datetime(2026, 3, 7, 1, tzinfo=UTC)
    assert real_seconds(clock, 3600) == 5


def test_the_setting_names_start_anchor_and_rate() -> None:
    clock = clock_from_setting("2026-03-07T00:00:00Z@1772841600x720")
    assert isinstance(clock, ScaledClock)
    assert (clock.start, clock.anchor, clock.rate) == (
        datetime(2026, 3, 7, tzinfo=UTC), 1772841600.0, 720.0)
    other = clock_from_setting("2026-03-07T01:00:00+01:00@1772841600x720")
    assert abs(other.now() - clock.now()) < timedelta(seconds=720)  # the same instant, two zones


@pytest.mark.parametrize("value", [
    "2026-03-07T00:00:00Z", "2026-03-07T00:00:00@1772841600x720", "soon@1x2",
    "2026-03-07T00:00:00Z@nowx720", "2026-03-07T00:00:00Z@1772841600x0",
    "2026-03-07T00:00:00Z@1772841600",
])
def test_a_malformed_setting_is_refused_naming_it_and_the_format(value: str) -> None:
    with pytest.raises(ConfigError, match=r"FLOWBOT_CLOCK: .*<start ISO time with zone>"):
        clock_from_setting(value)
