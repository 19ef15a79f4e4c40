"""The statements behind claiming slots and recording what became of them.

Used by :class:`runner.scheduling.sql_schedule_store.SqlScheduleStore` inside its
transactions: the fire rows a decision records, the compare-and-set advance of
each claimed schedule, taking over orphaned fires, and recording outcomes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, tuple_, update
from sqlalchemy.engine import Connection

from runner.scheduling.catchup import Decision
from runner.scheduling.fires import Fire, FireState, as_utc, fire_from_row, schedule_fires
from runner.scheduling.schedules import schedules


def fire_values(row: Any, decision: Decision, instance_id: str, now: datetime
                ) -> list[dict[str, Any]]:
    """The fire rows recording ``decision`` about schedule ``row``, oldest slot first:
    slots to run are ``fired`` (claimed now), the others ``skipped`` with their reason."""
    base = {"repo": row.repo, "flow_id": row.flow_id, "trigger_id": row.trigger_id,
            "inputs": row.inputs, "instance_id": instance_id,
            "recorded_at": now, "run_id": None}
    decided = [
        *({**base, "slot_at": slot, "state": FireState.FIRED.value,
           "reason": "", "claimed_at": now} for slot in decision.fire),
        *({**base, "slot_at": slot, "state": FireState.SKIPPED.value,
           "reason": reason.value, "claimed_at": None} for slot, reason in decision.skip),
    ]
    return sorted(decided, key=lambda values: values["slot_at"])


def advance(conn: Connection, decided: Sequence[tuple[Any, Decision]], now: datetime) -> None:
    """Move each claimed schedule to its decision's next fire."""
    # compare-and-set on next_fire_at: a concurrent instance that advanced the
    # row first wins; its slots and ours cannot overlap thanks to the fire key
    t = schedules.c
    conn.execute(
        update(schedules).where(t.id == bindparam("k_id"), t.next_fire_at == bindparam("k_next")),
        [{"k_id": row.id, "k_next": row.next_fire_at, "next_fire_at": decision.next_fire_at,
          "last_fire_at": _last_fire(row, decision), "updated_at": now}
         for row, decision in decided],
    )


def _last_fire(row: Any, decision: Decision) -> datetime:
    if row.last_fire_at is None:
        return decision.last_slot
    return max(decision.last_slot, as_utc(row.last_fire_at))


def orphans(instance_id: str, claimed_before: datetime, *, own: bool,
            spare: Collection[str] = ()) -> Select[Any]:
    """Fires still ``fired`` whose claim is older than ``claimed_before``, or (``own``)
    claimed by ``instance_id`` in an earlier life; never those of the ``spare``
    instances (live replicas: theirs are theirs, or their adopter's)."""
    t = schedule_fires.c
    orphaned = t.claimed_at < claimed_before
    if own:
        orphaned = orphaned | (t.instance_id == instance_id)
    query = select(schedule_fires).where(t.state == FireState.FIRED.value, orphaned)
    return query.where(t.instance_id.not_in(list(spare))) if spare else query


def orphans_of(dead: Sequence[str]) -> Select[Any]:
    """Fires still ``fired`` recorded (or last taken over) by the ``dead`` replicas."""
    t = schedule_fires.c
    return select(schedule_fires).where(t.state == FireState.FIRED.value,
                                        t.instance_id.in_(list(dead)))


def take_over(conn: Connection, rows: Sequence[Any], instance_id: str, now: datetime
              ) -> list[Fire]:
    """Claim the orphaned fire ``rows`` for ``instance_id``; those it won (another
    instance may take one first)."""
    t = schedule_fires.c
    taken: list[Fire] = []
    for row in rows:
        won = conn.execute(
            update(schedule_fires)
            .where(t.id == row.id, t.state == FireState.FIRED.value,
                   t.instance_id == row.instance_id, t.claimed_at == row.claimed_at)
            .values(instance_id=instance_id, claimed_at=now)
        ).rowcount
        if won:
            taken.append(fire_from_row(row))
    return taken


def record_outcomes(conn: Connection, fires: Sequence[Fire]) -> None:
    """Each fire's final state, and each schedule's latest run."""
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
