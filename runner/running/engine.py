"""Executes one run: tasks in ``needs`` order, independent ones in parallel up to
``max_parallel``, retries with backoff, task and run timeouts, skipped
dependants, ``errors`` tasks when the run fails, and cancellation from any thread.

The loop waits on a queue of finished tasks (no polling). A run that was
interrupted by a restart resumes here too: finished tasks keep their state and
outputs, attempts whose container survived are re-attached (see
:mod:`runner.running.reconcile`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from runner.backends.base import Existing
from runner.errors import EngineAwayBeforeStart, OwnershipLost
from runner.model.flows import Flow, Task
from runner.running import attempts
from runner.running.attempts import AttemptEnv, Outcome
from runner.running.dag import blocked, ready
from runner.state.records import AttemptRow, RunRecord, Status

log = logging.getLogger(__name__)

_RUN_TIMED_OUT = "run timed out after {seconds:g}s"
_TASK_ENDED = 'task "{task}" {how}: {reason}'
_NOT_NEEDED = "the run did not fail"
_NOT_STARTED = "not started: run {status}"

_RETRYABLE = (Status.FAILED, Status.TIMED_OUT)

Notify = Callable[[str | None, Status], None]  # (task id or None for the run, status)


class Sleeper(Protocol):
    def __call__(self, seconds: float, interrupt: threading.Event) -> None:
        """Wait ``seconds`` (a retry delay), returning early once ``interrupt`` is set."""


def event_sleep(seconds: float, interrupt: threading.Event) -> None:
    interrupt.wait(seconds)


class Execution:
    """One run being executed. :meth:`cancel` may be called from any thread."""

    def __init__(
        self, env: AttemptEnv, run: RunRecord, flow: Flow, *, max_parallel: int,
        context: dict[str, Any], base_env: dict[str, str], notify: Notify,
        sleeper: Sleeper = event_sleep, adopt: Mapping[tuple[str, int], Existing] = {},
    ) -> None:
        self.run, self.flow, self._env = run, flow, env
        self._max_parallel, self._sleeper, self._notify = max_parallel, sleeper, notify
        self._context, self._base_env = context, base_env
        self._adopt = dict(adopt)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_status: Status | None = None
        self._lost: OwnershipLost | None = None  # another replica took the run over
        self._away: EngineAwayBeforeStart | None = None  # the engine left before any start
        self._handles: dict[str, str] = {}
        self._done: queue.Queue[str] = queue.Queue()
        self._states: dict[str, Status] = {}
        self._resume: dict[str, AttemptRow] = {}
        env.register, env.stop_status = self._register, lambda: self._stop_status

    # --- control from other threads ---------------------------------------
    def cancel(self) -> None:
        self._halt(Status.CANCELLED)

    def _halt(self, status: Status) -> None:
        with self._lock:
            if self._stop_status is None:
                self._stop_status = status
            self._stop.set()
            handles = list(self._handles.values())
        for handle in handles:
            self._env.backend.kill(handle)

    def _register(self, task_id: str, handle: str | None) -> bool:
        with self._lock:
            if handle is None:
                self._handles.pop(task_id, None)
                return True
            self._handles[task_id] = handle
            return not self._stop.is_set()

    # --- the run ------------------------------------------------------------
    def execute(self) -> tuple[Status, str | None, str | None]:
        """Run to the end; returns (status, failed task, error)."""
        self._load_state()
        self._phase(self.flow.tasks, self._deadline())
        self._raise_if_lost()
        if self._away is not None:
            raise self._away  # the caller queues the run again (or, if it cannot, fails it)
        status, failed, error = self._verdict()
        handlers = [t for t in self.flow.errors if self._states[t.id] is Status.QUEUED]
        if status in (Status.FAILED, Status.TIMED_OUT) and handlers:
            with self._lock:
                self._stop.clear()  # handlers run even after a run timeout
                self._stop_status = None
            self._context["run"].update(failed_task=failed or "", error=error or "")
            self._base_env.update(FLOWBOT_FAILED_TASK=failed or "", FLOWBOT_ERROR=error or "")
            self._phase(self.flow.errors, None)
            self._raise_if_lost()
        self._close_unstarted(status)
        return status, failed, error

    def _load_state(self) -> None:
        store, run_id = self._env.store, self.run.id
        latest: dict[str, AttemptRow] = {}
        for row in store.attempts(run_id):
            if row.task_id not in latest or row.attempt > latest[row.task_id].attempt:
                latest[row.task_id] = row
        for task_row in store.task_rows(run_id):
            task_id = task_row.task_id
            self._states[task_id] = task_row.status
            self._context["tasks"][task_id] = {"outputs": dict(task_row.outputs)}
            if task_row.status is Status.RUNNING:  # interrupted by a restart
                self._states[task_id] = Status.QUEUED
                if task_id in latest:
                    self._resume[task_id] = latest[task_id]

    def _deadline(self) -> float | None:
        if self.flow.timeout is None:
            return None
        started = self.run.started_at or self._env.store.clock.now()
        spent = (self._env.store.clock.now() - started).total_seconds()
        return time.monotonic() + self.flow.timeout - spent

    def _phase(self, tasks: tuple[Task, ...], deadline: float | None) -> None:
        running: set[str] = set()
        with ThreadPoolExecutor(self._max_parallel, thread_name_prefix="task") as pool:
            while True:
                for task_id, reason in blocked(tasks, self._states).items():
                    self._set(task_id, Status.SKIPPED, reason=reason)
                if not self._stop.is_set():
                    for task in ready(tasks, self._states)[: self._max_parallel - len(running)]:
                        self._states[task.id] = Status.RUNNING
                        running.add(task.id)
                        pool.submit(self._task, task)
                if not running:
                    return  # nothing left that can start
                running.discard(self._next_done(deadline))

    def _next_done(self, deadline: float | None) -> str:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return self._done.get(timeout=wait)
            except queue.Empty:
                self._halt(Status.TIMED_OUT)
                deadline = None  # the kills make the running tasks report soon

    def _task(self, task: Task) -> None:
        try:
            outcome, number = self._attempts(task)
            self._env.store.save_outputs(self.run.id, task.id, outcome.outputs or {})
            self._context["tasks"][task.id] = {"outputs": dict(outcome.outputs or {})}
            self._set(task.id, outcome.status, reason=outcome.reason,
                      exit_code=outcome.exit_code, attempts=number)
        except OwnershipLost as exc:  # no new task starts; the adopter records this one
            with self._lock:
                self._lost = exc
                self._stop.set()
        except EngineAwayBeforeStart as exc:  # no new task starts, no retry, no handler
            self._set(task.id, Status.FAILED, reason=exc.reason)
            with self._lock:
                self._away = self._away or exc
                self._stop.set()
        except Exception as exc:  # a bug or a broken backend must not hang the run
            log.exception("task crashed", extra={"run": self.run.id, "task": task.id})
            self._set(task.id, Status.FAILED, reason=f"internal error: {exc}")
        finally:
            self._done.put(task.id)

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _attempts(self, task: Task) -> tuple[Outcome, int]:
        self._set(task.id, Status.RUNNING)
        resume = self._resume.pop(task.id, None)
        number = resume.attempt if resume else 0
        outcome = self._resumed(task, resume) if resume else None
        while True:
            if outcome is None:
                number += 1
                outcome = attempts.start(self._env, task, number, self._context,
                                         self._base_env_for(task, number), self.flow.env)
            if outcome.status not in _RETRYABLE or number > task.retry.limit:
                return outcome, number
            if self._stop.is_set():
                return outcome, number  # no retries once the run is stopping
            self._sleeper(task.retry.delay_before(number), self._stop)
            if self._stop.is_set():
                return outcome, number  # stopped during the delay
            outcome = None

    def _resumed(self, task: Task, row: AttemptRow) -> Outcome:
        existing = self._adopt.get((task.id, row.attempt))
        if row.status.terminal:
            return Outcome(row.status, row.exit_code, row.reason,
                           self._context["tasks"][task.id]["outputs"])
        if existing is not None:
            return attempts.follow(self._env, task, row.attempt, existing.handle)
        return attempts.abandon(self._env, task.id, row.attempt)

    def _base_env_for(self, task: Task, attempt: int) -> dict[str, str]:
        return {**self._base_env, "FLOWBOT_TASK_ID": task.id, "FLOWBOT_ATTEMPT": str(attempt)}

    def _set(self, task_id: str, status: Status, **details: Any) -> None:
        self._states[task_id] = status
        self._env.store.set_task_status(self.run.id, task_id, status, **details)
        self._notify(task_id, status)

    def _verdict(self) -> tuple[Status, str | None, str | None]:
        if self._stop_status is Status.CANCELLED:
            return Status.CANCELLED, None, "cancelled"
        if self._stop_status is Status.TIMED_OUT:
            return Status.TIMED_OUT, None, _RUN_TIMED_OUT.format(seconds=self.flow.timeout or 0)
        rows = {r.task_id: r for r in self._env.store.task_rows(self.run.id)}
        for task in self.flow.tasks:
            row = rows[task.id]
            if row.status in (Status.FAILED, Status.TIMED_OUT):
                how = "failed" if row.status is Status.FAILED else "timed out"
                return Status.FAILED, task.id, _TASK_ENDED.format(
                    task=task.id, how=how, reason=row.reason or "")
        return Status.SUCCESS, None, None

    def _close_unstarted(self, status: Status) -> None:
        for task in (*self.flow.tasks, *self.flow.errors):
            if self._states[task.id] is Status.QUEUED:
                handler = task in self.flow.errors and status is Status.SUCCESS
                reason = _NOT_NEEDED if handler else _NOT_STARTED.format(
                    status=status.value.replace("_", " "))
                self._set(task.id, Status.SKIPPED, reason=reason)
