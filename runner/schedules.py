"""Schedule rows and fire records.

A schedule row exists per (repo, flow, trigger) of every registered flow's
``schedule`` triggers. ``next_fire_at`` (UTC, indexed) is the first slot not yet
claimed; it is NULL while the schedule is paused or disabled, so the
scheduler's range scan never sees those rows. The slots decided about are
recorded in :mod:`runner.fires`.

:func:`sync_schedules` is called by :meth:`runner.registry.Registry.sync` in its
transaction; :class:`Schedules` pauses and resumes flows.
"""

from __future__ import annotations

import json
import logging
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
from sqlalchemy.engine import Connection, Engine

from runner import cron
from runner.clock import Clock
from runner.db import metadata
from runner.errors import FlowNotFound, ScheduleError
from runner.fires import FireState, SkipReason, as_utc, record_fires
from runner.flows import Flow, ScheduleTrigger

log = logging.getLogger(__name__)

BAD_TRIGGER = '{path}: flow "{flow}", trigger "{trigger}": {problem}'
MAX_RECORDED_MISSED = 10_000  # skipped slots recorded per resume (the first ones; logged if more)

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
    gone = list(removed)
    for chunk in _chunks(gone):
        conn.execute(delete(schedules).where(t.repo == repo, t.flow_id.in_(chunk)))
    existing: dict[tuple[str, str], Any] = {}
    for chunk in _chunks([flow.id for flow in flows]):
        query = select(schedules).where(t.repo == repo, t.flow_id.in_(chunk))
        existing.update({(r.flow_id, r.trigger_id): r for r in conn.execute(query)})
    inserts, updates, deletes = [], [], []
    wanted = {(flow.id, trig.id) for flow in flows for trig in flow.triggers}
    deletes = [row.id for key, row in existing.items() if key not in wanted]
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
    for chunk in _chunks(deletes):
        conn.execute(delete(schedules).where(t.id.in_(chunk)))
    if inserts:
        conn.execute(insert(schedules), inserts)
    if updates:
        conn.execute(update(schedules).where(t.id == bindparam("k_id")), updates)


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


class Schedules:
    """Pause and resume flows' schedules."""

    def __init__(self, engine: Engine, clock: Clock, *, instance_id: str = "") -> None:
        self._engine = engine
        self._clock = clock
        self._instance_id = instance_id

    def pause(self, repo: str, flow_id: str) -> None:
        """Stop firing ``flow_id``'s schedules until :meth:`resume`; FlowNotFound if unknown."""
        t = schedules.c
        with self._engine.begin() as conn:
            _set_flow_paused(conn, repo, flow_id, True)
            conn.execute(
                update(schedules)
                .where(t.repo == repo, t.flow_id == flow_id, t.paused.is_(False))
                .values(paused=True, held_fire_at=t.next_fire_at, next_fire_at=None,
                        updated_at=self._clock.now())
            )
        log.info("flow paused", extra={"repo": repo, "flow": flow_id})

    def resume(self, repo: str, flow_id: str) -> int:
        """Fire ``flow_id`` again from now on; slots missed while paused are recorded
        as skipped. Returns how many were recorded. FlowNotFound if unknown."""
        t = schedules.c
        now = self._clock.now()
        recorded = 0
        with self._engine.begin() as conn:
            _set_flow_paused(conn, repo, flow_id, False)
            query = select(schedules).where(
                t.repo == repo, t.flow_id == flow_id, t.paused.is_(True)
            )
            for row in conn.execute(query).all():
                recorded += self._record_missed(conn, row, now)
                upcoming = first_fire(row.cron, row.timezone, now, row.last_fire_at)
                conn.execute(update(schedules).where(t.id == row.id).values(
                    paused=False, held_fire_at=None, updated_at=now,
                    next_fire_at=upcoming if row.enabled else None,
                ))
        log.info("flow resumed", extra={"repo": repo, "flow": flow_id, "skipped": recorded})
        return recorded

    def _record_missed(self, conn: Connection, row: Any, now: datetime) -> int:
        if row.held_fire_at is None or as_utc(row.held_fire_at) > now:
            return 0  # nothing was due while paused
        slots, following = cron.due_slots(row.cron, row.timezone, as_utc(row.held_fire_at), now,
                                     MAX_RECORDED_MISSED)
        if following is not None and following <= now:
            log.warning("more than %d slots missed while paused; the first are recorded",
                        MAX_RECORDED_MISSED, extra={"repo": row.repo, "flow": row.flow_id})
        rows = [
            {"repo": row.repo, "flow_id": row.flow_id, "trigger_id": row.trigger_id,
             "slot_at": slot, "state": FireState.SKIPPED.value, "reason": SkipReason.PAUSED.value,
             "run_id": None, "inputs": row.inputs, "instance_id": self._instance_id,
             "recorded_at": now, "claimed_at": None}
            for slot in slots
        ]
        return len(record_fires(conn, rows))


def _set_flow_paused(conn: Connection, repo: str, flow_id: str, paused: bool) -> None:
    flows = metadata.tables["registered_flows"]  # owned by runner.registry, which imports us
    result = conn.execute(
        update(flows).where(flows.c.repo == repo, flows.c.flow_id == flow_id).values(paused=paused)
    )
    if result.rowcount == 0:
        raise FlowNotFound(flow_id, _known(conn, repo))


def _known(conn: Connection, repo: str) -> list[str]:
    flows = metadata.tables["registered_flows"]
    return [r[0] for r in conn.execute(select(flows.c.flow_id).where(flows.c.repo == repo))]
