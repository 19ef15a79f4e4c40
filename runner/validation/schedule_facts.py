"""Time-dependent facts about a schedule, computed cheaply and cached.

Validation asks, for every trigger: is the cron valid, does it ever fire, and
which DST warnings does it get in the coming year (:func:`runner.scheduling.cron.dst_warnings`).
The last walks a year of the zone's calendar and costs milliseconds, so this
module first finds the zone's offset transitions itself (weekly samples, then
:func:`runner.scheduling.cron.offset_change`) and asks whether any local slot of the cron
falls in a skipped or repeated hour; only then does it call ``dst_warnings`` for the exact messages.
Results are cached per (cron, zone, now): a repository's flows share a few
schedules, and one validation run uses one ``now``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from runner.scheduling import cron

_WEEKS = 54  # a little over the year dst_warnings looks at


@lru_cache(maxsize=1024)
def cron_problem(expr: str) -> str | None:
    """:func:`runner.scheduling.cron.check`, cached; a valid expression is confirmed in one parse,
    kept for the fire times asked next (``check`` parses each field on its own to name
    the bad one)."""
    text = cron.expand(expr)
    if not text.startswith("@") and len(text.split(" ")) == 5 and cron.parses(text):
        return None
    return cron.check(expr)


@lru_cache(maxsize=1024)
def schedule_facts(expr: str, tz: str, now: datetime) -> tuple[bool, tuple[str, ...]]:
    """Whether a valid schedule ever fires, and its DST warnings for the coming year."""
    fields = cron.expand(expr).split(" ")
    if not _surely_fires(fields) and cron.next_fire(expr, tz, now) is None:
        return False, ()
    hours = _hours(fields)
    ranges = local_shifted_ranges(tz, now.replace(minute=0, second=0, microsecond=0))
    if not any(_has_slot_in(expr, hours, start, end) for start, end in ranges):
        return True, ()  # no slot in a skipped or repeated hour: nothing to warn about
    return True, tuple(cron.dst_warnings(expr, tz, now))


def _surely_fires(fields: list[str]) -> bool:
    """A valid cron fires if any day will do (day of month ``*``: every day, or the
    days of week given) or any month will (every day of month 1-31 is in January)."""
    return len(fields) == 5 and (fields[2] == "*" or fields[3] == "*")


_HOUR_LIST = re.compile(r"^\d{1,2}(?:,\d{1,2})*$")


def _hours(fields: list[str]) -> frozenset[int] | None:
    """The hours a cron fires in, when its hour field is a plain list (``9``, ``6,18``)."""
    if len(fields) != 5 or _HOUR_LIST.match(fields[1]) is None:
        return None
    return frozenset(int(hour) for hour in fields[1].split(","))


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
            found.append(_shifted_range(cron.offset_change(before, after, zone), zone))
        before = after
    return tuple(found)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta | None:
    return moment.astimezone(zone).utcoffset()


def _shifted_range(instant: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    old = _offset(instant - cron.SECOND, zone) or timedelta(0)
    new = _offset(instant, zone) or timedelta(0)
    wall = instant.replace(tzinfo=None)
    # Forward: local [wall+old, wall+new) never happens. Back: [wall+new, wall+old) twice.
    low, high = sorted((wall + old, wall + new))
    return low, high


def _has_slot_in(expr: str, hours: frozenset[int] | None, start: datetime, end: datetime) -> bool:
    """Whether a local slot falls in [start, end); a range within one day that none of
    the cron's listed hours reaches needs no walk of its slots."""
    last = end - cron.TICK
    if hours is not None and start.date() == last.date():
        if hours.isdisjoint(range(start.hour, last.hour + 1)):
            return False
    slot = cron.next_local_slot(expr, start - cron.SECOND)
    return slot is not None and slot < end
