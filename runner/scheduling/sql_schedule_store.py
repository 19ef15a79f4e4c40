"""The schedule store on SQLite and PostgreSQL (:class:`SqlScheduleStore`).

Claiming is one transaction per batch: the due rows are read through the
``next_fire_at`` index (on PostgreSQL locked, skipping rows another instance is
claiming), each decision's slots are inserted under the unique fire key
(:func:`runner.scheduling.fires.record_fires`; a conflicting slot belongs to whoever
inserted it first) and ``next_fire_at`` advances by compare-and-set. Only
after that commit does the scheduler start anything, so a crash leaves fires
in state ``fired`` for the replica that adopts the crashed one
(:meth:`SqlScheduleStore.adopt`) or, failing that, :meth:`SqlScheduleStore.reclaim`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from runner.clock import Clock
from runner.model.flows import Flow
from runner.scheduling import cron
from runner.scheduling.catchup import Decision
from runner.scheduling.fire_claims import (
    advance,
    fire_values,
    orphans,
    orphans_of,
    record_outcomes,
    take_over,
)
from runner.scheduling.fires import (
    Fire,
    FireState,
    SkipReason,
    as_utc,
    fire_from_row,
    record_fires,
    schedule_fires,
)
from runner.scheduling.registered import set_paused
from runner.scheduling.schedule_store import Planner, Schedule
from runner.scheduling.schedules import first_fire, schedule_from_row, schedules, sync_schedules

log = logging.getLogger(__name__)

MAX_RECORDED_MISSED = 10_000  # skipped slots recorded per resume (the first ones; logged if more)


class SqlScheduleStore:
    """The :class:`runner.scheduling.schedule_store.ScheduleStore` over a SQLAlchemy engine.

    ``wake`` is set after every pause and resume, so a scheduler sleeping in the
    same process re-reads its next wake-up.
    """

    def __init__(
        self, engine: Engine, clock: Clock, *, instance_id: str = "",
        wake: threading.Event | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._instance_id = instance_id
        self._wake = wake if wake is not None else threading.Event()
        self._lock_rows = engine.dialect.name == "postgresql"

    @property
    def instance_id(self) -> str:
        return self._instance_id

    def sync(
        self, conn: Connection, repo: str, flows: Sequence[Flow], removed: Iterable[str],
        now: datetime, paused: frozenset[str] = frozenset(),
    ) -> None:
        sync_schedules(conn, repo, flows, removed, now, paused)

    def pause(self, repo: str, flow_id: str) -> None:
        t = schedules.c
        with self._engine.begin() as conn:
            set_paused(conn, repo, flow_id, True)
            conn.execute(
                update(schedules)
                .where(t.repo == repo, t.flow_id == flow_id, t.paused.is_(False))
                .values(paused=True, held_fire_at=t.next_fire_at, next_fire_at=None,
                        updated_at=self._clock.now())
            )
        log.info("flow paused", extra={"repo": repo, "flow": flow_id})
        self._wake.set()  # the scheduler re-reads its earliest next fire time

    def resume(self, repo: str, flow_id: str) -> int:
        t = schedules.c
        now = self._clock.now()
        recorded = 0
        with self._engine.begin() as conn:
            set_paused(conn, repo, flow_id, False)
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
        self._wake.set()
        return recorded

    def _record_missed(self, conn: Connection, row: Any, now: datetime) -> int:
        if row.held_fire_at is None or as_utc(row.held_fire_at) > now:
            return 0  # nothing was due while paused
        slots, following = cron.due_slots(row.cron, row.timezone, as_utc(row.held_fire_at), now,
                                          MAX_RECORDED_MISSED)
        if following is not None and following <= now:
            log.warning("more than %d slots missed while paused; the first are recorded",
                        MAX_RECORDED_MISSED, extra={"repo": row.repo, "flow": row.flow_id})
        missed = Decision((), tuple((slot, SkipReason.PAUSED) for slot in slots), None, now)
        return len(record_fires(conn, fire_values(row, missed, self._instance_id, now)))

    def claim(self, now: datetime, plan: Planner, limit: int) -> list[Fire]:
        t = schedules.c
        query = (
            select(schedules).where(t.next_fire_at <= now)
            .order_by(t.next_fire_at).limit(limit)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(self._locked(query)).all()
            if not rows:
                return []  # nothing due
            decided = [(row, plan(schedule_from_row(row))) for row in rows]
            values = [v for row, decision in decided
                      for v in fire_values(row, decision, self._instance_id, now)]
            inserted = record_fires(conn, values)
            advance(conn, decided, now)
        fires = [
            fire_from_row({**v, "id": inserted[key]})
            for v in values
            if (key := (v["repo"], v["flow_id"], v["trigger_id"], v["slot_at"])) in inserted
        ]
        log.debug("claimed %d slots of %d due schedules", len(fires), len(rows),
                  extra={"instance": self._instance_id})
        return fires

    def reclaim(self, now: datetime, lease: timedelta, *, own: bool,
                spare: Collection[str] = ()) -> list[Fire]:
        query = orphans(self._instance_id, now - lease, own=own, spare=spare)
        with self._engine.begin() as conn:
            rows = conn.execute(self._locked(query)).all()
            return take_over(conn, rows, self._instance_id, now)

    def adopt(self, dead: Sequence[str], now: datetime) -> list[Fire]:
        if not dead:
            return []  # no dead replica: nothing to take over
        with self._engine.begin() as conn:
            rows = conn.execute(self._locked(orphans_of(dead))).all()
            return take_over(conn, rows, self._instance_id, now)

    def record_outcomes(self, fires: Sequence[Fire]) -> None:
        if not fires:
            return  # nothing changed state
        with self._engine.begin() as conn:
            record_outcomes(conn, fires)

    def next_wakeup(self) -> datetime | None:
        with self._engine.connect() as conn:
            earliest = conn.execute(select(func.min(schedules.c.next_fire_at))).scalar()
        return None if earliest is None else as_utc(earliest)

    def list(self, repo: str | None = None) -> list[Schedule]:
        t = schedules.c
        query = select(schedules).order_by(t.repo, t.flow_id, t.trigger_id)
        if repo is not None:
            query = query.where(t.repo == repo)
        with self._engine.connect() as conn:
            return [schedule_from_row(row) for row in conn.execute(query)]

    def skipped(self, repos: Iterable[str] | None = None, limit: int = 50) -> tuple[Fire, ...]:
        t = schedule_fires.c
        query = (select(schedule_fires).where(t.state == FireState.SKIPPED.value)
                 .order_by(t.slot_at.desc(), t.id.desc()).limit(limit))
        if repos is not None:
            query = query.where(t.repo.in_(sorted(repos)))
        with self._engine.connect() as conn:
            return tuple(fire_from_row(row) for row in conn.execute(query))

    def _locked(self, query: Any) -> Any:
        # PostgreSQL: instances skip rows another is claiming instead of waiting;
        # the unique fire key stays the guarantee on every database.
        return query.with_for_update(skip_locked=True) if self._lock_rows else query

