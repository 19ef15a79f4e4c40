"""Cron expressions, fire times and the DST rule.

``croniter`` is the cron engine, but it is only ever asked about *naive local
wall-clock* times, where there is no DST to get wrong. Mapping a local slot to
a real instant is done here, by one documented rule:

* a slot whose local time does not exist (clocks go forward) fires once, at
  the first valid local minute after the gap;
* a slot whose local time happens twice (clocks go back) fires once, at its
  first occurrence.

Everything here is pure: no clock is read (callers pass the instants).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-6 or sun-sat"),
)
_MAX_GAP = timedelta(hours=3)  # no real DST gap is longer


def expand(expr: str) -> str:
    """The 5-field form of ``expr`` (macros expanded, whitespace normalised)."""
    text = " ".join(expr.split())
    return MACROS.get(text.lower(), text)


def check(expr: str) -> str | None:
    """None when ``expr`` is a valid 5-field cron or macro, else what is wrong."""
    text = expand(expr)
    if text.startswith("@"):
        return f'unknown macro "{text}"; use one of {", ".join(sorted(MACROS))}'
    parts = text.split(" ")
    if len(parts) == 6:
        return (
            "6 fields given: a seconds field is not supported "
            "(flowbot schedules fire at most once a minute); use 5 fields"
        )
    if len(parts) != 5:
        return (
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    for index, (name, allowed) in enumerate(_FIELDS):
        probe = ["*"] * 5
        probe[index] = parts[index]
        if not croniter.is_valid(" ".join(probe)):
            return f'field {index + 1} ({name}) "{parts[index]}" is not valid; allowed: {allowed}'
    if not croniter.is_valid(text):
        return f'"{text}" is not a valid cron expression'
    return None


def zone(tz: str) -> ZoneInfo:
    """The IANA zone ``tz``; raises ValueError with a plain message if unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown timezone "{tz}"; use an IANA name like Europe/Berlin') from None


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def to_instant(local: datetime, tz: ZoneInfo) -> datetime:
    """Map a naive local slot to its UTC instant by the DST rule above."""
    if _exists(local, tz):
        return local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    probe = local.replace(second=0, microsecond=0)
    limit = local + _MAX_GAP
    while probe <= limit:  # walk to the first minute that exists after the gap
        probe += timedelta(minutes=1)
        if _exists(probe, tz):
            return probe.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


_PARSED = threading.local()  # per thread: croniter objects are stateful iterators
_PARSED_MAX = 4096


def _local_slots(expr: str, start_local: datetime) -> croniter:
    # Parsing an expression costs far more than a step (~0.8 ms), and a scheduler
    # asks about the same few expressions all day: reuse the parsed iterator and
    # only move its start. Callers consume it before the next call in the thread.
    cache: dict[str, croniter] = _PARSED.__dict__.setdefault("slots", {})
    text = expand(expr)
    slots = cache.get(text)
    if slots is None:
        if len(cache) >= _PARSED_MAX:
            cache.clear()
        slots = cache[text] = croniter(text, start_local, ret_type=datetime)  # type: ignore[arg-type]
    else:
        slots.set_current(start_local, force=True)
    return slots


def parses(expr: str) -> bool:
    """Whether croniter accepts ``expr`` (a 5-field form): its parse is kept for the
    fire-time questions that usually follow, instead of being done twice."""
    try:
        _local_slots(expr, _PARSE_START)
    except (CroniterError, ValueError, KeyError, TypeError):
        return False
    return True


_PARSE_START = datetime(2000, 1, 1)


def next_local_slot(expr: str, after_local: datetime) -> datetime | None:
    """The first naive local slot strictly after ``after_local``; None if it never fires.
    (Reuses the parsed expression: cheap enough to ask per DST range.)"""
    try:
        slot: datetime = _local_slots(expr, after_local).get_next(datetime)
    except (CroniterBadDateError, CroniterError):
        return None
    return slot


def next_fire(expr: str, tz: str, after: datetime) -> datetime | None:
    """The first fire instant strictly after ``after`` (aware), in UTC; None if never."""
    times = fire_times(expr, tz, after, 1)
    return times[0] if times else None


def fire_times(expr: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire instants strictly after ``after``, in UTC, by the DST rule."""
    zone_info = zone(tz)
    start_local = after.astimezone(zone_info).replace(tzinfo=None) - _lookback(zone_info, after)
    slots = _local_slots(expr, start_local)
    found: list[datetime] = []
    try:
        while len(found) < count:
            instant = to_instant(slots.get_next(datetime), zone_info)
            if instant <= after or (found and instant <= found[-1]):
                continue  # before the start, or merged into the same instant by the rule
            found.append(instant)
    except (CroniterBadDateError, CroniterError):
        pass  # the expression never fires (e.g. 30 February)
    return found


def _lookback(tz: ZoneInfo, after: datetime) -> timedelta:
    """How far before ``after`` to start walking local slots: a slot in a DST gap
    shortly before ``after`` may map to an instant after it, so look back only
    when the offset changes near ``after`` (walking 3 h of a minutely cron on
    every call is what made frequent schedules slow)."""
    before = (after - _MAX_GAP).astimezone(tz).utcoffset()
    later = (after + _MAX_GAP).astimezone(tz).utcoffset()
    return _MAX_GAP if before != later else timedelta(0)


def due_slots(
    expr: str, tz: str, first: datetime, until: datetime, cap: int
) -> tuple[list[datetime], datetime | None]:
    """The slots from ``first`` (itself a slot) up to ``until``, at most ``cap`` of
    them, and the slot that follows them (None if the expression never fires again)."""
    due = [first]
    cursor, size = first, 1  # usually the very next slot is already after ``until``
    while True:
        batch = fire_times(expr, tz, cursor, size)
        for slot in batch:
            if slot > until or len(due) >= cap:
                return due, slot
            due.append(slot)
        if len(batch) < size:
            return due, None  # the expression has no more slots
        cursor, size = batch[-1], 64


def dst_warnings(expr: str, tz: str, start: datetime, days: int = 366) -> list[str]:
    """Warnings naming the dates on which a slot falls in a skipped or repeated hour."""
    zone_info = zone(tz)
    warnings = []
    for local_from, local_to, shifted in _transition_windows(zone_info, start, days):
        for local in _shifted_slots(expr, local_from, local_to, shifted):
            if not _exists(local, zone_info):
                fired = to_instant(local, zone_info).astimezone(zone_info)
                warnings.append(
                    f"{local:%Y-%m-%d %H:%M} does not exist in {tz} (clocks go forward); "
                    f"that slot fires once at {fired:%H:%M}"
                )
            elif _repeated(local, zone_info):
                warnings.append(
                    f"{local:%Y-%m-%d %H:%M} happens twice in {tz} (clocks go back); "
                    "that slot fires once, at its first occurrence"
                )
    return warnings


def _repeated(local: datetime, tz: ZoneInfo) -> bool:
    first = local.replace(tzinfo=tz, fold=0).utcoffset()
    second = local.replace(tzinfo=tz, fold=1).utcoffset()
    return first != second


_Range = tuple[datetime, datetime]


def _shifted_slots(
    expr: str, local_from: datetime, local_to: datetime, shifted: tuple[_Range, ...]
) -> list[datetime]:
    """The slots in (local_from, local_to] that fall in a skipped or repeated range:
    only those can warn, and walking just them (not the whole window) keeps a
    frequent schedule cheap."""
    found: list[datetime] = []
    for low, high in shifted:
        low, high = max(low, local_from + TICK), min(high, local_to + TICK)
        if low < high:
            found.extend(_slots_in(expr, low - TICK, high - TICK))
    return found


TICK = timedelta(microseconds=1)  # the smallest step: turns (a, b] into [a + TICK, b + TICK)
SECOND = timedelta(seconds=1)  # offsets change on whole seconds


def _slots_in(expr: str, local_from: datetime, local_to: datetime) -> list[datetime]:
    slots = _local_slots(expr, local_from)
    found = []
    try:
        while (slot := slots.get_next(datetime)) <= local_to:
            found.append(slot)
    except (CroniterBadDateError, CroniterError):
        pass  # never fires
    return found


@lru_cache(maxsize=256)
def _transition_windows(
    tz: ZoneInfo, start: datetime, days: int
) -> tuple[tuple[datetime, datetime, tuple[_Range, ...]], ...]:
    """Local wall-clock windows, one per UTC day in the period whose offset changes,
    each with the local ranges near it that are skipped or repeated (sorted, merged).
    Cached: a validation run asks about the same few zones from one ``start``."""
    found = []
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    previous = day.astimezone(tz).utcoffset()
    for _ in range(days):
        next_day = day + timedelta(days=1)
        offset = next_day.astimezone(tz).utcoffset()
        if offset != previous:
            found.append((
                (day - _MAX_GAP).astimezone(tz).replace(tzinfo=None),
                (next_day + _MAX_GAP).astimezone(tz).replace(tzinfo=None),
                _shifted_ranges(tz, day - 2 * _MAX_GAP, next_day + 2 * _MAX_GAP),
            ))
        day, previous = next_day, offset
    return tuple(found)


def _shifted_ranges(tz: ZoneInfo, utc_from: datetime, utc_to: datetime) -> tuple[_Range, ...]:
    """Local ranges skipped or repeated by offset changes between two instants
    (sampled hourly; no zone changes its offset twice within an hour). The span
    reaches _MAX_GAP beyond the window on each side: a change just outside it can
    still skip or repeat local times inside it."""
    ranges: list[_Range] = []
    low, before = utc_from, utc_from.astimezone(tz).utcoffset()
    while low < utc_to:
        high = low + _HOUR
        after = high.astimezone(tz).utcoffset()
        if after != before and before is not None and after is not None:
            instant = offset_change(low, high, tz)
            wall = instant.replace(tzinfo=None)
            first, second = sorted((wall + before, wall + after))
            ranges.append((first, second))
        low, before = high, after
    return tuple(_merged(sorted(ranges)))


_HOUR = timedelta(hours=1)


def offset_change(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in (low, high] with ``high``'s UTC offset in ``tz``
    (bisection; offsets change on whole seconds)."""
    target = high.astimezone(tz).utcoffset()
    while high - low > SECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == target:
            high = middle
        else:
            low = middle
    whole = high.replace(microsecond=0)
    return whole if whole.astimezone(tz).utcoffset() == target else whole + SECOND


def _merged(ranges: list[_Range]) -> list[_Range]:
    merged: list[_Range] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged
