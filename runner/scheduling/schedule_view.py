"""What ``flowbot schedules`` and ``/api/schedules`` show: each schedule with its
next fire times in its own timezone, its last fire and run, and its state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from runner.scheduling import cron
from runner.scheduling.fires import as_utc
from runner.scheduling.schedule_store import Schedule, ScheduleStore

UPCOMING = 3  # next fire times listed per schedule


class ScheduleState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


def schedule_rows(store: ScheduleStore, repo: str | None = None) -> list[dict[str, Any]]:
    """Every schedule (of ``repo``, or all), JSON-ready, ordered by repo, flow, trigger."""
    return [_view(schedule) for schedule in store.list(repo)]


def state_of(row: Schedule) -> ScheduleState:
    if row.paused:
        return ScheduleState.PAUSED
    return ScheduleState.ACTIVE if row.enabled else ScheduleState.DISABLED


def upcoming(row: Schedule) -> list[datetime]:
    if row.next_fire_at is None:
        return []  # paused or disabled: nothing will fire
    first = row.next_fire_at
    return [first, *cron.fire_times(row.cron, row.timezone, first, UPCOMING - 1)]


def _local(moment: datetime | None, tz: str) -> str | None:
    return None if moment is None else as_utc(moment).astimezone(cron.zone(tz)).isoformat()


def _view(row: Schedule) -> dict[str, Any]:
    return {
        "repo": row.repo,
        "flow_id": row.flow_id,
        "trigger_id": row.trigger_id,
        "cron": row.cron,
        "timezone": row.timezone,
        "state": state_of(row).value,
        "next_fires": [_local(moment, row.timezone) for moment in upcoming(row)],
        "last_fire_at": _local(row.last_fire_at, row.timezone),
        "last_run_id": row.last_run_id,
        "catchup": row.catchup.value,
        "catchup_limit": row.catchup_limit,
    }
