"""Durable run state: runs, their tasks, attempts, outputs and every status change.

Each status change is one transaction that also appends to ``run_transitions``,
and can be conditional on the current status (compare-and-set), so two workers
cannot both claim a queued run. A run records the replica executing it (``owner``)
and a cancel asked of another replica (``cancel_requested_at``). Works on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from runner.clock import Clock
from runner.errors import OwnershipLost
from runner.model.flows import Flow
from runner.state.records import (
    ACTIVE,
    AttemptRow,
    RunRecord,
    Status,
    TaskRow,
    Transition,
    Trigger,
    TriggerType,
)
from runner.state.run_tables import (
    attempt_row,
    aware,
    run_record,
    run_tasks,
    run_transitions,
    runs,
    task_attempts,
    task_outputs,
    task_row,
    transition,
)


def new_run_id() -> str:
    """A short id, unique with overwhelming probability (40 random bits)."""
    return secrets.token_hex(5)


class RunStore:
    """Reads and writes run state; every method is its own transaction."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # --- runs -------------------------------------------------------------
    def create_run(
        self, flow: Flow, *, repo: str, commit: str | None, trigger: Trigger,
        inputs: Mapping[str, Any], status: Status = Status.QUEUED, error: str | None = None,
        request_key: str | None = None,
    ) -> RunRecord:
        """Record a new run of ``flow`` with one row per task (errors tasks included).
        With ``request_key``, a run already recorded for that key is returned instead."""
        return self.create_run_once(flow, repo=repo, commit=commit, trigger=trigger,
                                    inputs=inputs, status=status, error=error,
                                    request_key=request_key)[0]

    def create_run_once(
        self, flow: Flow, *, repo: str, commit: str | None, trigger: Trigger,
        inputs: Mapping[str, Any], status: Status = Status.QUEUED, error: str | None = None,
        request_key: str | None = None,
    ) -> tuple[RunRecord, bool]:
        """Like :meth:`create_run`, and whether the run is new (False: ``request_key``
        was used before, by this call's earlier delivery or a racing one)."""
        if request_key is not None:
            earlier = self.run_for_request(request_key)
            if earlier is not None:
                return earlier, False  # a replayed request
        run_id, now = new_run_id(), self.clock.now()
        terminal = status.terminal
        try:
            with self.engine.begin() as conn:
                conn.execute(runs.insert().values(
                    id=run_id, repo=repo, flow_id=flow.id, flow_digest=flow.digest,
                    flow_json=json.dumps(flow.data, default=str), flow_path=flow.path,
                    commit=commit, trigger_type=trigger.type.value, trigger_actor=trigger.actor,
                    scheduled_at=trigger.scheduled_at, inputs_json=json.dumps(dict(inputs)),
                    status=status.value, error=error, created_at=now,
                    finished_at=now if terminal else None, request_key=request_key,
                ))
                tasks = [(t, False) for t in flow.tasks] + [(t, True) for t in flow.errors]
                conn.execute(run_tasks.insert(), [
                    {"run_id": run_id, "task_id": t.id, "position": i, "handler": handler,
                     "status": (Status.SKIPPED if terminal else Status.QUEUED).value,
                     "attempts": 0}
                    for i, (t, handler) in enumerate(tasks)
                ])
                self._log(conn, run_id, None, None, None, status, error, now)
        except IntegrityError:
            raced = self.run_for_request(request_key) if request_key is not None else None
            if raced is None:
                raise  # not a request key clash
            return raced, False  # the same request, recorded by a racing delivery
        record = self.get_run(run_id)
        assert record is not None
        return record, True

    def run_for_request(self, request_key: str) -> RunRecord | None:
        """The run started by request ``request_key`` (e.g. a ``/run`` comment line)."""
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().where(runs.c.request_key == request_key)).first()
        return run_record(row) if row else None

    def started_by(self, actor: str, repo: str, since: datetime,
                   nth: int) -> tuple[int, datetime | None]:
        """How many runs ``actor`` started by hand (a ``/run`` comment, the Run form, a
        re-run: trigger ``manual``) of ``repo`` after ``since``, and the creation time of
        the ``nth`` newest of them (None when there are fewer): once that one is an hour
        old, fewer than ``nth`` remain. Index ``ix_runs_actor_repo_created``."""
        c = runs.c
        where = sa.and_(c.trigger_actor == actor, c.repo == repo,
                        c.trigger_type == TriggerType.MANUAL.value, c.created_at > since)
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(runs).where(where))
            nth_at = conn.execute(sa.select(c.created_at).where(where)
                                  .order_by(c.created_at.desc()).offset(max(0, nth - 1))
                                  .limit(1)).scalar()
            return int(count.scalar() or 0), aware(nth_at)

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().where(runs.c.id == run_id)).first()
        return run_record(row) if row else None

    def list_runs(
        self, repo: str | None = None, flow_id: str | None = None, limit: int = 50,
        statuses: Iterable[Status] | None = None,
    ) -> list[RunRecord]:
        """Newest first."""
        query = runs.select().order_by(runs.c.created_at.desc(), runs.c.id).limit(limit)
        if repo is not None:
            query = query.where(runs.c.repo == repo)
        if flow_id is not None:
            query = query.where(runs.c.flow_id == flow_id)
        if statuses is not None:
            query = query.where(runs.c.status.in_([s.value for s in statuses]))
        with self.engine.connect() as conn:
            return [run_record(r) for r in conn.execute(query)]

    def runs_page(
        self, *, repos: Iterable[str] | None = None, flow_id: str | None = None,
        status: Status | None = None, trigger_type: TriggerType | None = None,
        since: datetime | None = None, until: datetime | None = None,
        before: tuple[datetime, str] | None = None, limit: int = 50,
    ) -> list[RunRecord]:
        """One page of runs, newest first by ``(created_at, id)``, of ``repos`` (None:
        every repository) created in ``[since, until)``, strictly older than the
        cursor ``before`` (the last run of the previous page).

        Keyset paging: each page is one range of an index (runs_0003), never an
        OFFSET, so the millionth run's page costs what the first one does."""
        c = runs.c
        query = runs.select().order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        if repos is not None:
            query = query.where(c.repo.in_(sorted(repos)))
        for column, value in ((c.flow_id, flow_id), (c.status, status),
                              (c.trigger_type, trigger_type)):
            if value is not None:
                query = query.where(column == str(value))
        if since is not None:
            query = query.where(c.created_at >= since)
        if until is not None:
            query = query.where(c.created_at < until)
        if before is not None:
            at, run_id = before
            query = query.where(sa.or_(c.created_at < at,
                                       sa.and_(c.created_at == at, c.id < run_id)))
        with self.engine.connect() as conn:
            return [run_record(r) for r in conn.execute(query)]

    def runs_with_status(self, *statuses: Status) -> list[RunRecord]:
        """Oldest first: the order queued runs start in."""
        query = (runs.select().where(runs.c.status.in_([s.value for s in statuses]))
                 .order_by(runs.c.created_at, runs.c.id))
        with self.engine.connect() as conn:
            return [run_record(r) for r in conn.execute(query)]

    def active_runs(self, repo: str, flow_id: str) -> list[RunRecord]:
        """Queued and running runs of one flow, oldest first (for concurrency limits)."""
        query = (runs.select()
                 .where(runs.c.repo == repo, runs.c.flow_id == flow_id,
                        runs.c.status.in_([s.value for s in ACTIVE]))
                 .order_by(runs.c.created_at, runs.c.id))
        with self.engine.connect() as conn:
            return [run_record(r) for r in conn.execute(query)]

    def set_run_status(
        self, run_id: str, to: Status, *, expect: Iterable[Status] | None = None,
        error: str | None = None, failed_task: str | None = None, reason: str | None = None,
        owner: str | None = None, held_by: str | None = None,
    ) -> bool:
        """Move the run to ``to``; with ``expect``, only from one of those statuses.
        ``owner`` stamps the replica that executes it (a claim); with ``held_by``, only
        while that replica still executes it (an adopter may have taken it over).
        Returns whether the change happened."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(runs.c.status, runs.c.started_at)
                               .where(runs.c.id == run_id)).first()
            if row is None:
                return False  # unknown run
            current = Status(row.status)
            if expect is not None and current not in set(expect):
                return False  # someone else moved it first
            values: dict[str, Any] = {"status": to.value}
            if to is Status.RUNNING and row.started_at is None:
                values["started_at"] = now
            if to.terminal:
                values["finished_at"] = now
            if error is not None:
                values["error"] = error
            if failed_task is not None:
                values["failed_task"] = failed_task
            if owner is not None:
                values["owner"] = owner
            held = [] if held_by is None else [runs.c.owner == held_by]
            done = conn.execute(runs.update().values(**values).where(
                runs.c.id == run_id, runs.c.status == current.value, *held))
            if done.rowcount != 1:
                return False  # lost a race between read and write, or the run itself
            self._log(conn, run_id, None, None, current, to, reason or error, now)
        return True

    # --- replicas: who executes a run, and cancels asked of another ----------
    def take_over(self, run_id: str, previous: str | None, owner: str) -> bool:
        """Stamp the running run ``run_id`` of replica ``previous`` (None: a run from
        before replicas) as ``owner``'s. Conditional on ``previous``, so of two replicas
        adopting the same run only one wins; False for the other."""
        was = runs.c.owner.is_(None) if previous is None else runs.c.owner == previous
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().values(owner=owner).where(
                runs.c.id == run_id, runs.c.status == Status.RUNNING.value, was))
        return done.rowcount == 1

    def requeue_unstarted(self, run_id: str, owner: str, note: str) -> bool:
        """Put the running run ``run_id`` of replica ``owner`` back in the queue: owner
        cleared, ``note`` as its error, its tasks queued again and its attempts dropped.
        Only while none of its attempts has started a container (has a handle) and no
        cancel is asked; False otherwise (nothing changes)."""
        now = self.clock.now()
        started = sa.exists().where(task_attempts.c.run_id == run_id,
                                    task_attempts.c.handle.is_not(None))
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().values(
                status=Status.QUEUED.value, owner=None, error=note, started_at=None,
            ).where(runs.c.id == run_id, runs.c.status == Status.RUNNING.value,
                    runs.c.owner == owner, runs.c.cancel_requested_at.is_(None), ~started))
            if done.rowcount != 1:
                return False
            conn.execute(task_attempts.delete().where(task_attempts.c.run_id == run_id))
            conn.execute(task_outputs.delete().where(task_outputs.c.run_id == run_id))
            conn.execute(run_tasks.update().values(
                status=Status.QUEUED.value, reason=None, exit_code=None, started_at=None,
                finished_at=None, attempts=0).where(run_tasks.c.run_id == run_id))
            self._log(conn, run_id, None, None, Status.RUNNING, Status.QUEUED, note, now)
        return True

    def request_cancel(self, run_id: str) -> bool:
        """Record a cancel for the replica executing ``run_id`` to act on; False unless
        the run is running. The first request's time is kept."""
        asked = sa.func.coalesce(runs.c.cancel_requested_at, self.clock.now())
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().values(cancel_requested_at=asked).where(
                runs.c.id == run_id, runs.c.status == Status.RUNNING.value))
        return done.rowcount == 1

    def cancel_requests(self, owner: str) -> list[str]:
        """Ids of the running runs of replica ``owner`` that someone asked to cancel."""
        query = sa.select(runs.c.id).where(
            runs.c.status == Status.RUNNING.value, runs.c.owner == owner,
            runs.c.cancel_requested_at.is_not(None)).order_by(runs.c.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # --- tasks and attempts -------------------------------------------------
    def task_rows(self, run_id: str) -> list[TaskRow]:
        """Every task of the run in flow order, with its outputs."""
        outputs = self.outputs(run_id)
        query = run_tasks.select().where(run_tasks.c.run_id == run_id).order_by(
            run_tasks.c.position)
        with self.engine.connect() as conn:
            return [task_row(r, outputs.get(r.task_id, {})) for r in conn.execute(query)]

    def set_task_status(
        self, run_id: str, task_id: str, to: Status, *, reason: str | None = None,
        exit_code: int | None = None, attempts: int | None = None,
    ) -> None:
        now = self.clock.now()
        where = (run_tasks.c.run_id == run_id, run_tasks.c.task_id == task_id)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(run_tasks.c.status, run_tasks.c.started_at)
                               .where(*where)).one()
            values: dict[str, Any] = {"status": to.value, "reason": reason}
            if to is Status.RUNNING and row.started_at is None:
                values["started_at"] = now
            if to.terminal:
                values["finished_at"] = now
            if exit_code is not None:
                values["exit_code"] = exit_code
            if attempts is not None:
                values["attempts"] = attempts
            conn.execute(run_tasks.update().values(**values).where(*where))
            self._log(conn, run_id, task_id, None, Status(row.status), to, reason, now)

    def running_of(self, owners: Iterable[str],
                   repos: Iterable[str] | None = None) -> list[RunRecord]:
        """The runs ``owners`` (replica ids) execute now, of ``repos`` (None: every
        repository), oldest first."""
        c = runs.c
        query = runs.select().where(c.status == Status.RUNNING.value,
                                    c.owner.in_(sorted(owners))).order_by(c.created_at, c.id)
        if repos is not None:
            query = query.where(c.repo.in_(sorted(repos)))
        with self.engine.connect() as conn:
            return [run_record(r) for r in conn.execute(query)]

    def owner_of(self, run_id: str) -> str | None:
        """The replica executing ``run_id`` (None: queued, or not stamped)."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(runs.c.owner).where(runs.c.id == run_id)).scalar()
        return None if found is None else str(found)

    def start_attempt(self, run_id: str, task_id: str, attempt: int, log_path: str,
                      held_by: str | None = None) -> None:
        """Record an attempt as started; with ``held_by``, only while that replica
        executes the run (the row is locked against a take-over meanwhile), else
        :class:`OwnershipLost` and nothing is recorded."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            if held_by is not None:
                owner = conn.execute(sa.select(runs.c.owner).where(runs.c.id == run_id)
                                     .with_for_update()).scalar()
                if owner != held_by:
                    raise OwnershipLost(run_id, owner)
            conn.execute(task_attempts.insert().values(
                run_id=run_id, task_id=task_id, attempt=attempt, status=Status.RUNNING.value,
                log_path=log_path, started_at=now))
            self._log(conn, run_id, task_id, attempt, None, Status.RUNNING, None, now)

    def set_attempt_handle(self, run_id: str, task_id: str, attempt: int, handle: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(task_attempts.update().values(handle=handle).where(
                *self._attempt(run_id, task_id, attempt)))

    def finish_attempt(
        self, run_id: str, task_id: str, attempt: int, status: Status,
        exit_code: int | None = None, reason: str | None = None,
    ) -> None:
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(task_attempts.update().values(
                status=status.value, exit_code=exit_code, reason=reason, finished_at=now,
            ).where(*self._attempt(run_id, task_id, attempt)))
            self._log(conn, run_id, task_id, attempt, Status.RUNNING, status, reason, now)

    def attempts(self, run_id: str, task_id: str | None = None) -> list[AttemptRow]:
        query = task_attempts.select().where(task_attempts.c.run_id == run_id).order_by(
            task_attempts.c.started_at, task_attempts.c.task_id, task_attempts.c.attempt)
        if task_id is not None:
            query = query.where(task_attempts.c.task_id == task_id)
        with self.engine.connect() as conn:
            return [attempt_row(r) for r in conn.execute(query)]

    # --- outputs and audit log ----------------------------------------------
    def save_outputs(self, run_id: str, task_id: str, values: Mapping[str, str]) -> None:
        """Replace the task's outputs (a retried task keeps only its last attempt's)."""
        with self.engine.begin() as conn:
            conn.execute(task_outputs.delete().where(
                task_outputs.c.run_id == run_id, task_outputs.c.task_id == task_id))
            if values:
                conn.execute(task_outputs.insert(), [
                    {"run_id": run_id, "task_id": task_id, "key": k, "value": v}
                    for k, v in values.items()])

    def outputs(self, run_id: str) -> dict[str, dict[str, str]]:
        """Outputs by task id, then key."""
        result: dict[str, dict[str, str]] = {}
        query = task_outputs.select().where(task_outputs.c.run_id == run_id)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                result.setdefault(row.task_id, {})[row.key] = row.value
        return result

    def transitions(self, run_id: str) -> list[Transition]:
        query = run_transitions.select().where(run_transitions.c.run_id == run_id).order_by(
            run_transitions.c.id)
        with self.engine.connect() as conn:
            return [transition(r) for r in conn.execute(query)]

    @staticmethod
    def _attempt(run_id: str, task_id: str, attempt: int) -> tuple[Any, ...]:
        return (task_attempts.c.run_id == run_id, task_attempts.c.task_id == task_id,
                task_attempts.c.attempt == attempt)

    @staticmethod
    def _log(
        conn: Connection, run_id: str, task_id: str | None, attempt: int | None,
        from_status: Status | None, to: Status, reason: str | None, at: datetime,
    ) -> None:
        conn.execute(run_transitions.insert().values(
            run_id=run_id, task_id=task_id, attempt=attempt,
            from_status=from_status.value if from_status else None, to_status=to.value,
            reason=reason, at=at))
