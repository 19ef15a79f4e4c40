"""The injected clock: where flowbot gets the time.

Every component that needs "now" takes a :class:`Clock`, so tests move time by
hand (``tests/clock.py``) instead of patching a module. ``FLOWBOT_CLOCK`` may
name a :class:`ScaledClock` for rehearsals (a simulated day in minutes); leases
and heartbeats use the database's clock, never this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from runner.errors import ConfigError


class Clock(Protocol):
    """Where flowbot gets the time; injected so tests control it."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """A rehearsal clock: ``start`` at the real instant ``anchor`` (Unix seconds),
    then ``rate`` times as fast as real time, so a day of schedules passes in
    minutes. Processes given the same start, anchor and rate agree on the time."""

    def __init__(self, start: datetime, anchor: float, rate: float,
                 real: Callable[[], float] = time.time) -> None:
        self.start, self.anchor, self.rate, self._real = start.astimezone(UTC), anchor, rate, real

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._real() - self.anchor) * self.rate)


def real_seconds(clock: Clock, seconds: float) -> float:
    """How many real seconds pass while ``clock`` moves ``seconds`` (to sleep on)."""
    return seconds / clock.rate if isinstance(clock, ScaledClock) else seconds


CLOCK_FORMAT = ("expected <start ISO time with zone>@<real Unix time>x<rate>, "
                "e.g. 2026-03-07T00:00:00Z@1772841600x720 (a rehearsal clock: "
                "for rehearsals and tests only; leave empty for the real clock)")


def clock_from_setting(value: str, setting: str = "FLOWBOT_CLOCK") -> Clock:
    """The clock ``value`` describes: the real one when empty, else a
    :class:`ScaledClock`; ConfigError naming ``setting`` when malformed."""
    if not value.strip():
        return SystemClock()  # the normal case: real time
    start_text, at, rest = value.strip().partition("@")
    anchor_text, x, rate_text = rest.partition("x")
    try:
        start = datetime.fromisoformat(start_text.replace("Z", "+00:00"))
        anchor, rate = float(anchor_text), float(rate_text)
    except ValueError:
        raise ConfigError(setting, f"{value!r}: {CLOCK_FORMAT}") from None
    if not (at and x) or start.tzinfo is None or rate <= 0:
        raise ConfigError(setting, f"{value!r}: {CLOCK_FORMAT}")
    return ScaledClock(start, anchor, rate)
