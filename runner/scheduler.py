"""The scheduler: decides which slots are due and hands each to a sink, once.

Only schedules with ``next_fire_at <= now`` are read (an index range scan), so
a tick costs O(due), never O(all). Each due slot is *claimed* by inserting its
fire row under the unique key (repo, flow, trigger, slot) in the same
transaction that advances ``next_fire_at``; an insert that conflicts means
another instance (or an earlier life of this one) already has the slot. Only
after that commit is the sink called. A crash between the two leaves the row
in state ``fired``; :meth:`Scheduler.recover` starts those exactly once.

Missed slots after downtime follow the trigger's catch-up policy (see
:func:`runner.catchup.decide`); every slot not run is recorded as skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.engine import Connection, Engine

from runner.catchup import decide
from runner.clock import Clock
from runner.errors import FireDeclined, FlowbotError
from runner.fires import (
    Fire,
    FireState,
    SkipReason,
    as_utc,
    fire_from_row,
    record_fires,
    schedule_fires,
)
from runner.flows import CatchUp
from runner.schedules import schedules

__all__ = ["BATCH", "LEASE", "MAX_SLEEP", "Fire", "FireSink", "Scheduler"]  # Fire: re-exported

log = logging.getLogger(__name__)

BATCH = 500  # schedules claimed per transaction
MAX_SLEEP = 60.0  # seconds; bounds the effect of a wall-clock change or a missed wake-up
LEASE = timedelta(minutes=5)  # a fire left "fired" this long by another instance is orphaned


class FireSink(Protocol):
    """Where fired slots go (in production, an adapter over ``RunService.submit``)."""

    def fire(self, fire: Fire) -> str | None:
        """Start the run for ``fire``; return its run id, or None if the flow's
        concurrency policy declined it (recorded as skipped). To record why (and
        the skipped run's id), raise :class:`FireDeclined` instead of returning None.

        Must be idempotent on ``fire.key``: after a crash between the run starting
        and the scheduler recording it, :meth:`Scheduler.recover` calls again with
        the same fire, and the sink must return the existing run rather than start
        a second. Raise a :class:`FlowbotError` for a permanent refusal (recorded as
        failed); any other exception leaves the fire to be retried by ``recover``.
        """


class Scheduler:
    """Fires due schedule slots exactly once into ``sink``.

    Several instances may share one PostgreSQL database; ``instance_id`` must be
    unique among live instances and stable across restarts of one instance.
    """

    def __init__(
        self,
        engine: Engine,
        sink: FireSink,
        clock: Clock,
        *,
        instance_id: str,
        wake: threading.Event | None = None,
        misfire_grace: float = 60.0,
    ) -> None:
        self._engine = engine
        self._sink = sink
        self._clock = clock
        self._instance_id = instance_id
        self._wake = wake if wake is not None else threading.Event()
        self._grace = timedelta(seconds=misfire_grace)
        self._lock_rows = engine.dialect.name == "postgresql"

    def wake(self) -> None:
        """Make :meth:`run_forever` re-read the earliest next fire now."""
        self._wake.set()

    def tick(self, now: datetime) -> list[Fire]:
        """Claim every slot due at ``now`` (up to :data:`BATCH` schedules) and start them.

        Returns the fires recorded by this call, in their final state.
        """
        claimed = self._claim(now)
        return self._start(claimed, now)

    def recover(self, now: datetime | None = None, *, own: bool = True) -> list[Fire]:
        """Start fires left in state ``fired`` by a crash: this instance's earlier
        life (``own``) or any instance whose lease expired. Each starts once."""
        now = now or self._clock.now()
        t = schedule_fires.c
        orphaned = t.claimed_at < now - LEASE
        if own:
            orphaned = orphaned | (t.instance_id == self._instance_id)
        taken: list[Fire] = []
        with self._engine.begin() as conn:
            query = select(schedule_fires).where(t.state == FireState.FIRED.value, orphaned)
            rows = conn.execute(self._locked(query)).all()
            for row in rows:
                won = conn.execute(
                    update(schedule_fires)
                    .where(t.id == row.id, t.state == FireState.FIRED.value,
                           t.instance_id == row.instance_id, t.claimed_at == row.claimed_at)
                    .values(instance_id=self._instance_id, claimed_at=now)
                ).rowcount
                if won:
                    taken.append(fire_from_row(row))
        if taken:
            log.warning("recovering %d fires recorded but not started", len(taken),
                        extra={"instance": self._instance_id})
        return self._start(taken, now)

    def next_wakeup(self) -> datetime | None:
        """The earliest ``next_fire_at`` of all schedules (one indexed query)."""
        with self._engine.connect() as conn:
            earliest = conn.execute(select(func.min(schedules.c.next_fire_at))).scalar()
        return None if earliest is None else as_utc(earliest)

    def run_forever(self, stop: threading.Event) -> None:
        """Tick whenever a slot is due until ``stop`` is set."""
        self.recover()
        last_recovery = self._clock.now()
        while not stop.is_set():
            now = self._clock.now()
            try:
                self.tick(now)
                if now - last_recovery >= LEASE:
                    self.recover(now, own=False)
                    last_recovery = now
                earliest = self.next_wakeup()
            except Exception:  # a database hiccup must not kill the loop
                log.exception("scheduler tick failed", extra={"instance": self._instance_id})
                earliest = None
            self._sleep(earliest, stop)

    def _sleep(self, earliest: datetime | None, stop: threading.Event) -> None:
        delay = MAX_SLEEP
        if earliest is not None:
            delay = min(MAX_SLEEP, max(0.0, (earliest - self._clock.now()).total_seconds()))
        waited = 0.0
        while waited < delay and not stop.is_set():
            step = min(0.5, delay - waited)  # short steps so stop is noticed promptly
            if self._wake.wait(step):
                break
            waited += step
        self._wake.clear()

    def _locked(self, query: Any) -> Any:
        # PostgreSQL: instances skip rows another is claiming instead of waiting;
        # the unique fire key stays the guarantee on every database.
        return query.with_for_update(skip_locked=True) if self._lock_rows else query

    def _claim(self, now: datetime) -> list[Fire]:
        t = schedules.c
        query = (
            select(schedules).where(t.next_fire_at <= now)
            .order_by(t.next_fire_at).limit(BATCH)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(self._locked(query)).all()
            if not rows:
                return []  # nothing due
            fire_rows, advances = self._decide_all(rows, now)
            inserted = record_fires(conn, fire_rows)
            _advance(conn, advances)
        fires = [
            fire_from_row({**values, "id": inserted[key]})
            for values in fire_rows
            if (key := _key(values)) in inserted
        ]
        log.debug("claimed %d slots of %d due schedules", len(fires), len(rows),
                  extra={"instance": self._instance_id})
        return fires

    def _decide_all(
        self, rows: Sequence[Any], now: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        fire_rows: list[dict[str, Any]] = []
        advances: list[dict[str, Any]] = []
        for row in rows:
            decision = decide(row.cron, row.timezone, as_utc(row.next_fire_at), now,
                              CatchUp(row.catchup), row.catchup_limit, self._grace)
            base = {"repo": row.repo, "flow_id": row.flow_id, "trigger_id": row.trigger_id,
                    "inputs": row.inputs, "instance_id": self._instance_id,
                    "recorded_at": now, "run_id": None}
            decided = [
                *({**base, "slot_at": slot, "state": FireState.FIRED.value,
                   "reason": "", "claimed_at": now} for slot in decision.fire),
                *({**base, "slot_at": slot, "state": FireState.SKIPPED.value,
                   "reason": reason.value, "claimed_at": None} for slot, reason in decision.skip),
            ]
            fire_rows.extend(sorted(decided, key=lambda values: values["slot_at"]))
            last = decision.last_slot
            if row.last_fire_at is not None:
                last = max(last, as_utc(row.last_fire_at))
            advances.append({"k_id": row.id, "k_next": row.next_fire_at,
                             "next_fire_at": decision.next_fire_at, "last_fire_at": last,
                             "updated_at": now})
        return fire_rows, advances

    def _start(self, fires: list[Fire], now: datetime) -> list[Fire]:
        done = [self._start_one(f) if f.state is FireState.FIRED else f for f in fires]
        outcomes = [f for f, before in zip(done, fires, strict=True) if f is not before]
        if outcomes:
            with self._engine.begin() as conn:
                _record_outcomes(conn, outcomes)
        return done

    def _start_one(self, fire: Fire) -> Fire:
        extra = {"repo": fire.repo, "flow": fire.flow_id, "fire": fire.key}
        try:
            run_id = self._sink.fire(fire)
        except FireDeclined as exc:
            log.info("fire declined: %s", exc.reason, extra=extra)
            return replace(fire, state=FireState.SKIPPED, reason=exc.reason, run_id=exc.run_id)
        except FlowbotError as exc:
            log.warning("fire refused: %s", exc, extra=extra)
            return replace(fire, state=FireState.FAILED, reason=str(exc))
        except Exception:
            log.exception("sink failed; the fire will be retried by recovery", extra=extra)
            return fire
        if run_id is None:
            log.info("fire declined by the runner", extra=extra)
            return replace(fire, state=FireState.SKIPPED, reason=SkipReason.DECLINED.value)
        log.info("fire started run %s", run_id, extra={**extra, "run": run_id})
        return replace(fire, state=FireState.STARTED, run_id=run_id)


def _key(values: dict[str, Any]) -> tuple[str, str, str, datetime]:
    return (values["repo"], values["flow_id"], values["trigger_id"], values["slot_at"])


def _advance(conn: Connection, advances: list[dict[str, Any]]) -> None:
    # compare-and-set on next_fire_at: a concurrent instance that advanced the
    # row first wins; its slots and ours cannot overlap thanks to the fire key
    t = schedules.c
    conn.execute(
        update(schedules).where(t.id == bindparam("k_id"), t.next_fire_at == bindparam("k_next")),
        advances,
    )


def _record_outcomes(conn: Connection, fires: list[Fire]) -> None:
    t = schedule_fires.c
    conn.execute(
        update(schedule_fires).where(t.id == bindparam("k_id"), t.state == FireState.FIRED.value),
        [{"k_id": f.id, "state": f.state.value, "reason": f.reason, "run_id": f.run_id}
         for f in fires],
    )
    started = {(f.repo, f.flow_id, f.trigger_id) for f in fires if f.run_id is not None}
    if not started:
        return  # no run to point at
    s = schedules.c
    latest_run = (
        select(t.run_id)
        .where(t.repo == s.repo, t.flow_id == s.flow_id, t.trigger_id == s.trigger_id,
               t.run_id.is_not(None))
        .order_by(t.slot_at.desc()).limit(1).scalar_subquery()
    )
    conn.execute(
        update(schedules)
        .where(tuple_(s.repo, s.flow_id, s.trigger_id).in_(sorted(started)))
        .values(last_run_id=latest_run)
    )
