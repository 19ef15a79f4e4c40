"""Times as people read them (pure): "in 3 h", "5 min ago", with the exact time in a
zone for the tooltip."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_STEPS = ((86400, "d"), (3600, "h"), (60, "min"))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def relative(moment: datetime, now: datetime) -> str:
    """``in 3 h`` / ``5 min ago`` / ``now`` (the largest whole unit)."""
    seconds = int((_utc(moment) - _utc(now)).total_seconds())
    span = abs(seconds)
    for size, unit in _STEPS:
        if span >= size:
            amount = f"{span // size} {unit}"
            return f"in {amount}" if seconds > 0 else f"{amount} ago"
    return "now" if span < 30 else ("in under a minute" if seconds > 0 else "under a minute ago")


def iso(moment: datetime) -> str:
    """The moment in UTC as ISO 8601 (a ``<time datetime>``; the browser shows it in
    its own zone, see ``static/local-time.js``)."""
    return _utc(moment).astimezone(UTC).isoformat()


def exact(moment: datetime, zone: str = "UTC") -> str:
    """``2026-03-01 13:00 CET (Europe/Paris)``; UTC as ``2026-03-01 12:00 UTC``."""
    local = _utc(moment).astimezone(ZoneInfo(zone))
    text = local.strftime("%Y-%m-%d %H:%M %Z")
    return text if zone == "UTC" else f"{text} ({zone})"


def shown(moment: datetime | None, now: datetime, zone: str = "UTC") -> dict[str, str] | None:
    """A time as the pages' ``moment`` macro shows it: relative, local (the zone's; the
    browser's with JS) and UTC, with its ISO instant; None stays None."""
    if moment is None:
        return None
    return {"iso": iso(moment), "relative": relative(moment, now),
            "local": exact(moment, zone), "utc": exact(moment)}
