"""The injected clock: where flowbot gets the time.

Every component that needs "now" takes a :class:`Clock`, so tests move time by
hand (``tests/clock.py``) instead of patching a module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Where flowbot gets the time; injected so tests control it."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)
