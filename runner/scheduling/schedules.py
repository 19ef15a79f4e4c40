"""Schedule rows: the ``schedules`` table and how a registry sync changes it.

A schedule row exists per (repo, flow, trigger) of every registered flow's
``schedule`` triggers. ``next_fire_at`` (UTC, indexed) is the first slot not yet
claimed; it is NULL while the schedule is paused or disabled, so the
scheduler's range scan never sees those rows (a paused row keeps its slot in
``held_fire_at``). The slots decided about are recorded in :mod:`runner.scheduling.fires`.

Only the schedule store (:mod:`runner.scheduling.sql_schedule_store`) uses this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from runner.errors import ScheduleError
from runner.model.flows import CatchUp, Flow, ScheduleTrigger
from runner.scheduling import cron
from runner.scheduling.fires import as_utc
from runner.scheduling.schedule_store import Schedule
from runner.state.db import metadata

BAD_TRIGGER = '{path}: flow "{flow}", trigger "{trigger}": {problem}'

schedules = Table(
    "schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False),
    Column("flow_id", String(100), nullable=False),
    Column("trigger_id", String(64), nullable=False),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("inputs", Text, nullable=False),
    Column("catchup", String(16), nullable=False),
    Column("catchup_limit", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("next_fire_at", DateTime(timezone=True), nullable=True),
    Column("held_fire_at", DateTime(timezone=True), nullable=True),
    Column("last_fire_at", DateTime(timezone=True), nullable=True),
    Column("last_run_id", String(64), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("repo", "flow_id", "trigger_id", name="uq_schedules_trigger"),
    Index("ix_schedules_next_fire_at", "next_fire_at"),
)


def first_fire(trigger_cron: str, tz: str, now: datetime, last: datetime | None) -> datetime | None:
    """The next slot after ``now`` — never at or before ``last`` (the clock may step back)."""
    after = now if last is None else max(now, as_utc(last))
    return cron.next_fire(trigger_cron, tz, after)


def schedule_from_row(row: Any) -> Schedule:
    """A :class:`Schedule` from a ``schedules`` row."""
    return Schedule(
        repo=row.repo, flow_id=row.flow_id, trigger_id=row.trigger_id, cron=row.cron,
        timezone=row.timezone, catchup=CatchUp(row.catchup), catchup_limit=row.catchup_limit,
        enabled=bool(row.enabled), paused=bool(row.paused),
        next_fire_at=_utc(row.next_fire_at), last_fire_at=_utc(row.last_fire_at),
        last_run_id=row.last_run_id,
    )


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def sync_schedules(
    conn: Connection,
    repo: str,
    flows: Sequence[Flow],
    removed: Iterable[str],
    now: datetime,
    paused: frozenset[str] = frozenset(),
) -> None:
    """Bring ``repo``'s schedule rows in line with added/changed ``flows``; drop ``removed``.

    An unchanged trigger keeps its row (and next fire); a changed cron or
    timezone recomputes the next fire from ``now``; a vanished trigger is deleted.
    """
    t = schedules.c
    for chunk in _chunks(list(removed)):
        conn.execute(delete(schedules).where(t.repo == repo, t.flow_id.in_(chunk)))
    existing = _existing(conn, repo, [flow.id for flow in flows])
    wanted = {(flow.id, trig.id) for flow in flows for trig in flow.triggers}
    for chunk in _chunks([row.id for key, row in existing.items() if key not in wanted]):
        conn.execute(delete(schedules).where(t.id.in_(chunk)))
    inserts, updates = _new_and_changed(repo, flows, existing, now, paused)
    if inserts:
        conn.execute(insert(schedules), inserts)
    if updates:
        conn.execute(update(schedules).where(t.id == bindparam("k_id")), updates)


def _existing(conn: Connection, repo: str, flow_ids: list[str]) -> dict[tuple[str, str], Any]:
    """``repo``'s schedule rows of ``flow_ids``, by (flow, trigger)."""
    t = schedules.c
    existing: dict[tuple[str, str], Any] = {}
    for chunk in _chunks(flow_ids):
        query = select(schedules).where(t.repo == repo, t.flow_id.in_(chunk))
        existing.update({(r.flow_id, r.trigger_id): r for r in conn.execute(query)})
    return existing


def _new_and_changed(
    repo: str, flows: Sequence[Flow], existing: dict[tuple[str, str], Any],
    now: datetime, paused: frozenset[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows to insert for new triggers and the updates of known ones."""
    inserts, updates = [], []
    for flow in flows:
        for trig in flow.triggers:
            row = existing.get((flow.id, trig.id))
            try:
                if row is None:
                    inserts.append(_new_row(repo, flow.id, trig, now, flow.id in paused))
                else:
                    updates.append(_changed_row(row, trig, now))
            except ValueError as exc:  # unknown timezone: validation should have caught it
                raise ScheduleError(BAD_TRIGGER.format(
                    path=flow.path, flow=flow.id, trigger=trig.id, problem=exc)) from exc
    return inserts, updates


def _chunks(items: list[Any], size: int = 2000) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _settings(trig: ScheduleTrigger) -> dict[str, Any]:
    return {
        "cron": cron.expand(trig.cron),
        "timezone": trig.timezone,
        "inputs": json.dumps(trig.inputs, sort_keys=True, default=str),
        "catchup": trig.catchup.value,
        "catchup_limit": trig.catchup_limit,
        "enabled": trig.enabled,
    }


def _new_row(
    repo: str, flow_id: str, trig: ScheduleTrigger, now: datetime, paused: bool
) -> dict[str, Any]:
    upcoming = first_fire(trig.cron, trig.timezone, now, None) if trig.enabled else None
    return {
        **_settings(trig), "repo": repo, "flow_id": flow_id, "trigger_id": trig.id,
        "paused": paused, "next_fire_at": None if paused else upcoming,
        "held_fire_at": upcoming if paused else None,
        "last_fire_at": None, "last_run_id": None, "updated_at": now,
    }


def _changed_row(row: Any, trig: ScheduleTrigger, now: datetime) -> dict[str, Any]:
    settings = _settings(trig)
    same_times = (row.cron, row.timezone) == (settings["cron"], settings["timezone"])
    upcoming = row.held_fire_at if row.paused else row.next_fire_at
    if not same_times or (trig.enabled and not row.enabled) or upcoming is None:
        upcoming = first_fire(trig.cron, trig.timezone, now, row.last_fire_at)
    if not trig.enabled:
        upcoming = None
    return {
        **settings, "k_id": row.id, "updated_at": now,
        "next_fire_at": None if row.paused else upcoming,
        "held_fire_at": upcoming if row.paused else None,
    }
