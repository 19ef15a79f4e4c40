"""The schedule store: the one owner of scheduling state.

Everything flowbot knows about schedules — a row per (repo, flow, trigger) of
every registered flow's ``schedule`` triggers, and a fire record per slot
decided about — is read and written through a :class:`ScheduleStore`. The
registry syncs rows into it, the bot pauses and resumes flows through it, the
scheduler claims due slots from it and records their outcomes in it, and
``flowbot schedules`` lists it. :class:`runner.scheduling.sql_schedule_store.SqlScheduleStore`
is the implementation (SQLite and PostgreSQL); nothing else touches the tables.

The scheduler only decides: :meth:`ScheduleStore.claim` hands it each due
schedule and records what it decided (:class:`runner.scheduling.catchup.Decision`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Connection

from runner.model.flows import CatchUp, Flow
from runner.scheduling.catchup import Decision
from runner.scheduling.fires import Fire


@dataclass(frozen=True)
class Schedule:
    """One schedule row as the store's users see it (instants aware, in UTC)."""

    repo: str
    flow_id: str
    trigger_id: str
    cron: str  # the 5-field form
    timezone: str
    catchup: CatchUp
    catchup_limit: int
    enabled: bool
    paused: bool
    next_fire_at: datetime | None  # None while paused or disabled
    last_fire_at: datetime | None
    last_run_id: str | None


Planner = Callable[[Schedule], Decision]
"""What the scheduler gives :meth:`ScheduleStore.claim`: the slots of one due
schedule to run and to skip (its ``next_fire_at`` is set and at most ``now``)."""


class ScheduleStore(Protocol):
    """Schedules and their fire records, shared by every scheduler instance.

    Several instances may share one database; each store is built with an
    ``instance_id`` unique among live instances and stable across restarts, and
    every slot is claimed by exactly one of them (a unique fire key per slot).
    """

    @property
    def instance_id(self) -> str:
        """The instance this store claims slots for (recorded on each fire)."""

    def sync(
        self,
        conn: Connection,
        repo: str,
        flows: Sequence[Flow],
        removed: Iterable[str],
        now: datetime,
        paused: frozenset[str] = frozenset(),
    ) -> None:
        """Bring ``repo``'s schedules in line with the added or changed ``flows``
        and drop those of the ``removed`` flow ids, in the registry's transaction
        ``conn``. An unchanged trigger keeps its next fire; a changed cron or
        timezone recomputes it from ``now``; flows in ``paused`` stay paused.
        Raises :class:`runner.errors.ScheduleError` for a trigger that cannot be
        scheduled (an unknown timezone)."""

    def pause(self, repo: str, flow_id: str) -> None:
        """Stop firing ``flow_id``'s schedules until :meth:`resume`, and wake the
        scheduler so it re-reads its next wake-up. Raises
        :class:`runner.errors.FlowNotFound` when the flow is not registered."""

    def resume(self, repo: str, flow_id: str) -> int:
        """Fire ``flow_id`` again from now on and wake the scheduler. Slots missed
        while paused are recorded as skipped; returns how many. Raises
        :class:`runner.errors.FlowNotFound` when the flow is not registered."""

    def claim(self, now: datetime, plan: Planner, limit: int) -> list[Fire]:
        """Claim the slots of up to ``limit`` schedules due at ``now``.

        Each due schedule is given to ``plan``; the slots it decides about are
        recorded (to run: state ``fired``; the others ``skipped`` with their
        reason) and the schedule advances to the decision's next fire, in one
        transaction. A slot another instance recorded first is left out. Returns
        the fires this call recorded, oldest slot first per schedule."""

    def reclaim(self, now: datetime, lease: timedelta, *, own: bool,
                spare: Collection[str] = ()) -> list[Fire]:
        """Take over fires left in state ``fired`` (claimed, never started): this
        instance's own from an earlier life (``own``) and any whose claim is older
        than ``lease``, except those of the ``spare`` instances (live replicas).
        Each is taken by one instance only."""

    def adopt(self, dead: Sequence[str], now: datetime) -> list[Fire]:
        """Take over the fires left in state ``fired`` by the ``dead`` instances
        (replicas another replica adopted). Each is taken by one instance only."""

    def record_outcomes(self, fires: Sequence[Fire]) -> None:
        """Record the final state of started, skipped or failed ``fires`` (still
        ``fired`` in the store), and point each schedule at its latest run."""

    def next_wakeup(self) -> datetime | None:
        """The earliest next fire of all schedules; None when nothing will fire."""

    def list(self, repo: str | None = None) -> list[Schedule]:
        """Every schedule (of ``repo``, or all), ordered by repo, flow, trigger."""

    def skipped(self, repos: Iterable[str] | None = None, limit: int = 50) -> tuple[Fire, ...]:
        """The latest slots recorded as skipped (of ``repos``, or all), newest slot
        first, at most ``limit``."""
