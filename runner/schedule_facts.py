"""Time-dependent facts about a schedule, computed cheaply and cached.

Validation asks, for every trigger: is the cron valid, does it ever fire, and
which DST warnings does it get in the coming year (:func:`runner.cron.dst_warnings`).
The last walks a year of the zone's calendar and costs milliseconds, so this
module first finds the zone's offset transitions itself (weekly samples, then
bisection) and asks whether any local slot of the cron falls in a skipped or
repeated hour; only then does it call ``dst_warnings`` for the exact messages.
Results are cached per (cron, zone, now): a repository's flows share a few
schedules, and one validation run uses one ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

from runner import cron

_WEEKS = 54  # a little over the year dst_warnings looks at
_ONE_SECOND = timedelta(seconds=1)


@lru_cache(maxsize=1024)
def cron_problem(expr: str) -> str | None:
    """:func:`runner.cron.check`, cached; a valid expression is confirmed in one parse
    (``check`` parses each field on its own to name the bad one)."""
    text = cron.expand(expr)
    if not text.startswith("@") and len(text.split(" ")) == 5 and croniter.is_valid(text):
        return None
    return cron.check(expr)


@lru_cache(maxsize=1024)
def schedule_facts(expr: str, tz: str, now: datetime) -> tuple[bool, tuple[str, ...]]:
    """Whether a valid schedule ever fires, and its DST warnings for the coming year."""
    if cron.next_fire(expr, tz, now) is None:
        return False, ()
    ranges = local_shifted_ranges(tz, now.replace(minute=0, second=0, microsecond=0))
    if not any(_has_slot_in(expr, start, end) for start, end in ranges):
        return True, ()  # no slot in a skipped or repeated hour: nothing to warn about
    return True, tuple(cron.dst_warnings(expr, tz, now))


@lru_cache(maxsize=512)
def local_shifted_ranges(tz: str, start: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """Naive local wall-clock ranges skipped or repeated by the zone's offset changes
    within ~a year of ``start`` (DST periods last far longer than the weekly step)."""
    zone = ZoneInfo(tz)
    found = []
    before = start
    for week in range(1, _WEEKS + 1):
        after = start + timedelta(days=7 * week)
        if _offset(before, zone) != _offset(after, zone):
            found.append(_shifted_range(_transition(before, after, zone), zone))
        before = after
    return tuple(found)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta | None:
    return moment.astimezone(zone).utcoffset()


def _transition(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (low, high] with ``high``'s offset (bisection to a second)."""
    target = _offset(high, zone)
    while high - low > _ONE_SECOND:
        middle = low + (high - low) / 2
        if _offset(middle, zone) == target:
            high = middle
        else:
            low = middle
    whole = high.replace(microsecond=0)  # offsets change on whole seconds
    return whole if _offset(whole, zone) == target else whole + _ONE_SECOND


def _shifted_range(instant: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    old = _offset(instant - _ONE_SECOND, zone) or timedelta(0)
    new = _offset(instant, zone) or timedelta(0)
    wall = instant.replace(tzinfo=None)
    # Forward: local [wall+old, wall+new) never happens. Back: [wall+new, wall+old) twice.
    low, high = sorted((wall + old, wall + new))
    return low, high


def _has_slot_in(expr: str, start: datetime, end: datetime) -> bool:
    slot = cron.next_local_slot(expr, start - _ONE_SECOND)
    return slot is not None and slot < end
