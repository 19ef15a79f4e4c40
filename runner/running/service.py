"""The run service: what the bot, the scheduler and ``flowbot run`` call.

``submit`` checks inputs and secrets, applies the flow's concurrency policy and
queues the run with its own copy of the repository; worker threads
(:meth:`RunService.start`) or :meth:`RunService.execute` run it; ``cancel`` and
``reconcile`` work on runs in any state. Listeners hear about every change.

Several replicas (processes) may share one database: a run is executed by the
replica whose claim stamped it (``runs.owner``); a flow's concurrency is counted
under :class:`runner.state.locks.FlowLocks`; a cancel for a run another replica
executes is recorded and that replica's poller acts on it; :meth:`RunService.adopt`
takes over the runs of replicas that died. With a :class:`runner.state.notify.Notifier`
a queued or ended run wakes every replica's workers, and a recorded cancel its
owner's poller, at once; the polls remain as the fallback.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from runner.backends.base import Backend, Existing
from runner.backends.fit import backend_refusal
from runner.backends.limits import TaskLimits
from runner.clock import Clock
from runner.errors import EngineAwayBeforeStart, FlowbotError, OwnershipLost, SecretMissing
from runner.model.flows import ConcurrencyPolicy, Flow, flow_from_data
from runner.running import input_files
from runner.running import reconcile as reconciling
from runner.running.attempts import AttemptEnv
from runner.running.engine import Execution, Sleeper, event_sleep
from runner.running.inputs import coerce_inputs, input_env
from runner.running.logstore import DEFAULT_MAX_BYTES, FileLogs, LogSink, LogStore
from runner.running.masking import Masker
from runner.running.workspace import (
    ExportLimits,
    inputs_dir,
    place_staged,
    prepare_workspace,
    remove_run_dir,
    remove_stale_staging,
    staging_dir,
)
from runner.state.locks import FlowLocks
from runner.state.notify import CANCELS, RUNS, Notifier
from runner.state.records import EventKind, RunEvent, RunRecord, Status, Trigger, TriggerType
from runner.state.store import RunStore

log = logging.getLogger(__name__)

Listener = Callable[[RunEvent], None]
_SKIPPED = "concurrency limit {limit} reached: run {active} of this flow is still active"
_SUPERSEDED = "cancelled by a newer run ({run}) under the flow's concurrency policy"
_CANCELLED_QUEUED = "cancelled before it started"
_UNPREPARED = "cannot prepare the run's files: {problem}"
_UNRECORDED = "the end of a task could not be recorded (is the data disk full?)"
_WRITE_RETRY_FIRST, _WRITE_RETRY_MAX = 0.2, 5.0  # seconds between tries of the final write
_STALE_STAGING = 600.0  # seconds after which an unplaced staging dir is a crash's leftover
_POLL = 5.0  # seconds: also notice runs queued by other processes sharing the database
_CANCEL_POLL = 1.0  # seconds between looks for cancels asked of this replica elsewhere
_ENGINE_POLL = 1.0  # seconds between looks for an engine that went away, before claiming
# the prefix is the engine gate's (bot/engine_gate.py), which clears it when the engine is back
_REQUEUED = (
    "Waiting for the Docker engine: it went away before this run's first task could start, "
    "so the run is queued again and starts when the engine is back (`/cancel {run_id}` "
    "drops it)."
)


def _cause(exc: BaseException) -> str:
    """A database error's driver message (no SQL, no parameters), else the error."""
    return str(getattr(exc, "orig", None) or exc)


def installation_for(db_url: str) -> str:
    """The owner label of containers started by every replica sharing the database at
    ``db_url``: its address without the password, hashed (a new password keeps it)."""
    address = make_url(db_url).render_as_string(hide_password=True)  # the password as ***
    return hashlib.sha256(address.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Submission:
    """The result of :meth:`RunService.submit`: queued, or already decided."""

    run_id: str
    status: Status  # QUEUED, SKIPPED (concurrency) or FAILED (missing secret, bad checkout)
    reason: str | None = None


class RunService:
    """``owner`` labels the containers (the installation: every replica on one
    database); ``replica`` is this process, stamped on the runs it executes."""

    def __init__(
        self, store: RunStore, backend: Backend, data_dir: Path, secrets: Mapping[str, str],
        clock: Clock, max_parallel: int = 4, listeners: Iterable[Listener] = (), *,
        owner: str = "default", replica: str = "local", sleeper: Sleeper = event_sleep,
        run_url: Callable[[str], str] = lambda run_id: "",
        limits: TaskLimits | None = None, log_max_bytes: int = DEFAULT_MAX_BYTES,
        input_file_max_bytes: int = input_files.DEFAULT_MAX_BYTES,
        workspace_limits: ExportLimits | None = None,
        logs: LogStore | None = None, notifier: Notifier | None = None,
        poll: float = _POLL, cancel_poll: float = _CANCEL_POLL,
    ) -> None:
        self.store, self.backend, self.data_dir = store, backend, data_dir
        self.input_file_max_bytes = input_file_max_bytes  # FLOWBOT_INPUT_FILE_MAX_BYTES
        # a run's copy of the repository (FLOWBOT_WORKSPACE_MAX_BYTES, _MAX_FILES, _SECONDS)
        self.workspace_limits = workspace_limits or ExportLimits()
        self.log_max_bytes = log_max_bytes  # kept of each attempt's log (FLOWBOT_LOG_MAX_BYTES)
        self.logs = logs if logs is not None else FileLogs(data_dir)  # where attempt logs go
        self.limits = limits  # the operator's bounds on what a flow's tasks may ask for
        self.clock, self.max_parallel, self.owner = clock, max_parallel, owner
        self.replica = replica
        self._locks = FlowLocks(store.engine)
        self._secrets = dict(secrets)
        self._listeners = list(listeners)
        self._sleeper, self._run_url = sleeper, run_url
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._executions: dict[str, Execution] = {}
        self._workers: list[threading.Thread] = []
        self._stopping = self._cancel_on_stop = False
        self._generation = 0  # bumped by every wake-up, so a worker never misses one
        self._poll_stop = threading.Event()
        self._cancel_wake = threading.Event()  # a cancel was requested somewhere: look now
        self._cancel_unstarted: set[str] = set()  # asked to cancel, claimed, not started yet
        self._engine_away = threading.Event()  # a run was queued again: claim once it answers
        self.poll, self.cancel_poll = poll, cancel_poll  # the fallback when no one notifies
        self._notifier = notifier
        if notifier is not None:
            notifier.on(RUNS, lambda _payload: self._wake_workers())
            notifier.on(CANCELS, lambda _payload: self._cancel_wake.set())
        # preparations a crash interrupted (their runs were never recorded)
        remove_stale_staging(data_dir, _STALE_STAGING, time.time())

    # --- submitting ---------------------------------------------------------
    def submit(
        self, flow: Flow, inputs: Mapping[str, Any], *, repo: str, commit: str | None,
        source: Path, trigger: Trigger, request_key: str | None = None,
    ) -> Submission:
        """Queue a run of ``flow``. Raises InputError (nothing recorded) on bad inputs,
        file inputs included (missing, a link, too large). A ``request_key`` seen
        before (a replayed ``/run``) answers with the run it started, and records
        nothing new."""
        if request_key is not None and (earlier := self.store.run_for_request(request_key)):
            return Submission(earlier.id, earlier.status, earlier.error)  # a replay
        files = coerce_inputs(flow.inputs, dict(inputs))  # file inputs: sources to copy
        values = input_files.unstaged(files)
        missing = [name for name in flow.secrets if name not in self._secrets]
        if missing and trigger.type is not TriggerType.SCHEDULE:
            raise SecretMissing(flow.id, missing)  # refused before a run (and its id) exists
        if missing:  # a scheduled slot: the failed run opens the issue that tells the team
            return self._decided(flow, values, repo, commit, trigger, Status.FAILED,
                                 str(SecretMissing(flow.id, missing)), request_key)
        refused = self.limits.refusal(flow) if self.limits is not None else None
        refused = refused or backend_refusal(flow, self.backend)  # what it cannot honour
        if refused is not None:
            return self._decided(flow, values, repo, commit, trigger, Status.FAILED,
                                 refused, request_key)
        staged = staging_dir(self.data_dir)
        try:
            problem = self._stage(source, commit, staged, repo, flow)
            if problem is not None:
                return self._decided(flow, values, repo, commit, trigger, Status.FAILED,
                                     problem, request_key)
            values = input_files.stage_files(files, staged / "repo", staged / "inputs",
                                             self.input_file_max_bytes)
            # count and insert as one step for every replica (a skipped run is not active)
            with self._locks.hold(repo, flow.id):
                blocked = self._apply_concurrency(flow, repo)
                admitted = None if blocked is not None else self._admit(
                    flow, values, repo, commit, trigger, request_key, staged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # still there unless it was placed
        if admitted is None:
            return self._decided(flow, values, repo, commit, trigger, Status.SKIPPED,
                                 str(blocked), request_key)
        if admitted.status is Status.QUEUED:
            self._poke()
            log.info("run queued", extra={"run": admitted.run_id, "repo": repo, "flow": flow.id})
        return admitted

    def _admit(self, flow: Flow, values: Mapping[str, Any], repo: str, commit: str | None,
               trigger: Trigger, request_key: str | None, staged: Path) -> Submission:
        """Record the run as queued and move its files in place (under the flow's lock,
        so no replica claims it before its files are there)."""
        run, new = self.store.create_run_once(flow, repo=repo, commit=commit, trigger=trigger,
                                              inputs=values, request_key=request_key)
        if not new:
            return Submission(run.id, run.status, run.error)  # a racing replay won
        try:
            place_staged(staged, self.data_dir, run.id)
        except OSError as exc:
            reason = _UNPREPARED.format(problem=exc)
            self._end_unstarted(run.id, Status.FAILED, reason)
            return Submission(run.id, Status.FAILED, reason)
        return Submission(run.id, Status.QUEUED)

    def _stage(self, source: Path, commit: str | None, staged: Path, repo: str,
               flow: Flow) -> str | None:
        """Prepare the run's files in ``staged``; None, or why they could not be."""
        try:
            prepare_workspace(source, commit, staged / "repo", exclude=[self.data_dir],
                              limits=self.workspace_limits)
        except Exception as exc:  # whatever it is, the run ends failed and says why
            reason = _UNPREPARED.format(problem=exc if isinstance(exc, FlowbotError)
                                        else f"{type(exc).__name__}: {exc}")
            log.warning("run not prepared", extra={"repo": repo, "flow": flow.id,
                                                   "reason": reason})
            return reason
        return None

    def _apply_concurrency(self, flow: Flow, repo: str) -> str | None:
        """None to go ahead, or why the new run is skipped."""
        if flow.concurrency is None:
            return None  # unlimited
        active = self.store.active_runs(repo, flow.id)
        excess = len(active) - flow.concurrency.limit + 1
        if excess <= 0:
            return None  # a slot is free
        if flow.concurrency.policy is ConcurrencyPolicy.SKIP:
            return _SKIPPED.format(limit=flow.concurrency.limit, active=active[0].id)
        if flow.concurrency.policy is ConcurrencyPolicy.CANCEL:
            for old in active[:excess]:
                self.cancel(old.id)
        return None  # queue: the worker starts it when a slot frees

    def _decided(self, flow: Flow, values: Mapping[str, Any], repo: str, commit: str | None,
                 trigger: Trigger, status: Status, reason: str,
                 request_key: str | None = None) -> Submission:
        run, new = self.store.create_run_once(flow, repo=repo, commit=commit, trigger=trigger,
                                              inputs=values, status=status, error=reason,
                                              request_key=request_key)
        if not new:
            return Submission(run.id, run.status, run.error)  # a racing replay won
        self._emit(RunEvent(run.id, EventKind.FINISHED, status=status))
        return Submission(run.id, status, reason)

    # --- executing ----------------------------------------------------------
    def execute(self, run_id: str, sink: LogSink | None = None) -> RunRecord:
        """Run a queued run (or resume a running one) in this thread, to its end; the
        run becomes this replica's."""
        run = self.store.get_run(run_id)
        if run is None:
            raise FlowbotError(f"no run with id {run_id}")
        if run.status is Status.QUEUED:
            self.store.set_run_status(run_id, Status.RUNNING, expect=[Status.QUEUED],
                                      owner=self.replica)
        elif run.status is Status.RUNNING:
            self.store.take_over(run_id, run.owner, self.replica)  # resumed here
        return self._execute(run_id, sink=sink)

    def _execute(self, run_id: str, *, sink: LogSink | None = None,
                 adopt: Mapping[tuple[str, int], Existing] = {}) -> RunRecord:
        run = self.store.get_run(run_id)
        assert run is not None
        if run.status is not Status.RUNNING or run.owner != self.replica:
            return run  # cancelled (or finished) before it could start, or not ours
        flow = flow_from_data(run.flow_data, run.flow_path)
        secrets = {n: self._secrets[n] for n in flow.secrets if n in self._secrets}
        execution = self._execution(run, flow, secrets, sink, adopt)
        with self._lock:
            if run.id in self._executions:
                raise FlowbotError(f"run {run.id} is already being executed")
            self._executions[run.id] = execution
            if run.id in self._cancel_unstarted:
                self._cancel_wake.set()  # a cancel came between claim and start: act now
            if self._stopping and self._cancel_on_stop:
                execution.cancel()  # claimed while stop(cancel_running=True) looked
        self._emit(RunEvent(run.id, EventKind.STARTED, status=Status.RUNNING))
        lost = requeued = False
        try:
            status, failed, error = execution.execute()
        except EngineAwayBeforeStart as exc:  # no container of the run ever started
            requeued = self._requeue(run.id)
            status, failed, error = Status.FAILED, exc.task_id, str(exc)  # if not requeued
        except OwnershipLost as exc:  # this replica was thought dead and adopted
            lost = True
            log.warning("another replica took the run over; leaving it to that one",
                        extra={"run": run.id, "owner": exc.owner, "replica": self.replica})
        except Exception as exc:  # never leave a run "running" because of a bug
            log.exception("run crashed", extra={"run": run.id})
            # a database error says what failed without its SQL (e.g. the disk is full)
            status, failed, error = Status.FAILED, None, f"internal error: {_cause(exc)}"
        finally:
            with self._lock:
                self._executions.pop(run.id, None)
            if not lost and not requeued:
                remove_run_dir(self.data_dir, run.id)  # the adopter still needs them
        if requeued:  # back in the queue, with its files; the workers wait for the engine
            self._emit(RunEvent(run.id, EventKind.QUEUED, status=Status.QUEUED))
            self._poke()
            lost = True  # its end is not this execution's to record
        if not lost:
            if status is Status.SUCCESS and not self._all_recorded(run.id):
                status, error = Status.FAILED, _UNRECORDED
            masked = Masker(list(secrets.values())).mask(error) if error else None
            lost = not self._record_end(run.id, status, masked, failed)
        if not lost:
            self._emit(RunEvent(run.id, EventKind.FINISHED, status=status))
        self._poke()  # a slot of the flow's limit is free
        final = self.store.get_run(run.id)
        assert final is not None
        return final

    def _requeue(self, run_id: str) -> bool:
        """Put a run whose first container could not start because the engine went away
        back in the queue (only under the workers, which wait for the engine; a plain
        :meth:`execute` fails it as before). False when it cannot go back."""
        with self._lock:
            if not self._workers or self._stopping:
                return False
        if not self.store.requeue_unstarted(run_id, self.replica,
                                            _REQUEUED.format(run_id=run_id)):
            return False  # a container of it started meanwhile, or a cancel was asked
        self._engine_away.set()
        log.warning("the engine went away before the run started; it is queued again",
                    extra={"run": run_id})
        return True

    def _engine_answers(self) -> bool:
        """Whether queued runs may be claimed: the engine answers (or no run was queued
        again because it went away)."""
        if not self._engine_away.is_set():
            return True
        answers = getattr(self.backend, "engine_answers", None)
        if answers is not None and not answers():
            return False
        self._engine_away.clear()
        log.info("the engine answers again; queued runs start")
        return True

    def _all_recorded(self, run_id: str) -> bool:
        """Every task's end is in the database (a write refused by a full disk is not)."""
        return all(t.status.terminal for t in self.store.task_rows(run_id))

    def _record_end(self, run_id: str, status: Status, error: str | None,
                    failed: str | None) -> bool:
        """Store the run's end, trying again while the database refuses writes (a full
        disk): the run ends truthfully once space returns, never stays "running".
        False when another replica executes the run now (it records the end)."""
        delay = _WRITE_RETRY_FIRST
        while True:
            try:
                if self.store.set_run_status(run_id, status, error=error, failed_task=failed,
                                             held_by=self.replica):
                    return True
                return self.store.owner_of(run_id) == self.replica  # ended otherwise
            except Exception as exc:
                log.error("cannot record the end of a run; trying again",
                          extra={"run": run_id, "status": status.value, "reason": _cause(exc),
                                 "retry_in": delay})
            time.sleep(delay)
            delay = min(delay * 2, _WRITE_RETRY_MAX)

    def _execution(self, run: RunRecord, flow: Flow, secrets: dict[str, str],
                   sink: LogSink | None, adopt: Mapping[tuple[str, int], Existing]) -> Execution:
        env = AttemptEnv(self.store, self.backend, self.data_dir, self.owner, run.id, secrets,
                         sink, register=lambda _t, _h: True, stop_status=lambda: None,
                         log_max_bytes=self.log_max_bytes, logs=self.logs, replica=self.replica)
        trigger = run.trigger
        values = input_files.task_values(run.inputs, inputs_dir(self.data_dir, run.id),
                                         self.backend.inputs_mount)
        context: dict[str, Any] = {
            "inputs": values, "secrets": secrets, "tasks": {},
            "run": {"id": run.id, "url": self._run_url(run.id), "commit": run.commit or "",
                    "failed_task": "", "error": ""},
            "trigger": {"type": trigger.type.value, "actor": trigger.actor,
                        "scheduled_at": trigger.scheduled_at.isoformat()
                        if trigger.scheduled_at else ""},
            "flow": {"id": flow.id},
        }
        base_env = {**input_env(values), "FLOWBOT_RUN_ID": run.id,
                    "FLOWBOT_FLOW_ID": flow.id, "FLOWBOT_COMMIT": run.commit or ""}

        def notify(task_id: str | None, status: Status) -> None:
            self._emit(RunEvent(run.id, EventKind.TASK, task_id, status))

        return Execution(env, run, flow, max_parallel=self.max_parallel, context=context,
                         base_env=base_env, notify=notify, sleeper=self._sleeper, adopt=adopt)

    # --- control ------------------------------------------------------------
    def cancel(self, run_id: str) -> bool:
        """Cancel a run from any replica; False if it had already ended. A queued run
        ends at once, and so does one this replica executes; for one another replica
        executes the request is recorded, and that replica's poller (:meth:`start`)
        cancels it when notified, or within about a second."""
        with self._lock:
            execution = self._executions.get(run_id)
        if execution is not None:
            execution.cancel()
            return True
        if self._end_unstarted(run_id, Status.CANCELLED, _CANCELLED_QUEUED):
            return True
        if not self.store.request_cancel(run_id):
            return False  # ended meanwhile
        self._tell(CANCELS, run_id)  # running elsewhere (or just claimed): its owner looks
        return True

    def _end_unstarted(self, run_id: str, status: Status, reason: str) -> bool:
        if not self.store.set_run_status(run_id, status, expect=[Status.QUEUED], error=reason):
            return False  # already started elsewhere, or ended
        for row in self.store.task_rows(run_id):
            self.store.set_task_status(run_id, row.task_id, Status.SKIPPED, reason=reason)
        remove_run_dir(self.data_dir, run_id)
        self._emit(RunEvent(run_id, EventKind.FINISHED, status=status))
        return True

    def adopt(self, dead_replicas: Sequence[str], block: bool = False) -> list[str]:
        """Take over the runs the replicas ``dead_replicas`` were executing, and running
        runs without an owner (from before replicas), and bring them to a truthful
        state (:mod:`runner.running.reconcile`); returns their ids. Runs of live
        replicas are never touched. Resumed runs continue in background threads
        unless ``block``."""
        dead = set(dead_replicas)
        return self._adopt(lambda run: run.owner is None or run.owner in dead, block)

    def reconcile(self, block: bool = False, live: Collection[str] = ()) -> list[str]:
        """Adopt every running run whose replica is not in ``live``: what one process
        does at its start (runs its previous life left, this replica's id included),
        before :meth:`start`. Replicas sharing a database call :meth:`adopt` with the
        replicas found dead instead."""
        alive = set(live)
        return self._adopt(lambda run: run.owner not in alive, block)

    def _adopt(self, adoptable: Callable[[RunRecord], bool], block: bool) -> list[str]:
        with self._lock:
            local = set(self._executions)  # executing here: nothing to adopt
        plans = reconciling.plan(self.store, self.backend, self.owner, self.replica,
                                 lambda run: run.id not in local and adoptable(run))
        threads = [threading.Thread(target=self._execute, args=(p.run_id,),
                                    kwargs={"adopt": p.adopt}, name=f"resume-{p.run_id}")
                   for p in plans]
        for thread in threads:
            thread.start()
        if block:
            for thread in threads:
                thread.join()
        return [p.run_id for p in plans]

    # --- workers ------------------------------------------------------------
    def start(self, workers: int = 2) -> None:
        """Start ``workers`` threads that execute queued runs, oldest first, and the
        poller of cancels other replicas record for this replica's runs."""
        self._stopping = self._cancel_on_stop = False
        self._poll_stop.clear()
        for number in range(workers):
            thread = threading.Thread(target=self._work, name=f"run-worker-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)
        poller = threading.Thread(target=self._poll_cancels, name="run-cancels", daemon=True)
        poller.start()
        self._workers.append(poller)

    def stop(self, cancel_running: bool = False) -> None:
        """Stop taking queued runs; wait for the running ones (or cancel them first)."""
        with self._wake:
            self._stopping, self._cancel_on_stop = True, cancel_running
            self._wake.notify_all()
            running = list(self._executions.values())
        if cancel_running:
            for execution in running:
                execution.cancel()
        self._poll_stop.set()
        self._cancel_wake.set()
        for thread in self._workers:
            thread.join()
        self._workers.clear()

    def _poke(self) -> None:
        """Wake the workers, of every replica: a run was queued or a slot freed."""
        self._wake_workers()
        self._tell(RUNS)

    def _tell(self, channel: str, payload: str = "") -> None:
        if self._notifier is not None:
            self._notifier.notify(channel, payload)

    def _wake_workers(self) -> None:
        """Wake this replica's workers."""
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def _work(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return  # asked to stop
                seen = self._generation
            if not self._engine_answers():  # runs wait in the queue, as the engine gate's do
                with self._wake:
                    if not self._stopping:
                        self._wake.wait(_ENGINE_POLL)
                continue
            run = self._claim()  # not under self._lock: it waits for flow locks
            if run is not None:
                self._execute(run.id)
                continue
            with self._wake:
                if self._generation == seen and not self._stopping:
                    self._wake.wait(self.poll)  # nothing to take until a poke or a notification

    def _claim(self) -> RunRecord | None:
        """The oldest queued run its flow's limit lets start, now running as this
        replica's; counting and claiming hold the flow's lock, for every replica."""
        for run in self.store.runs_with_status(Status.QUEUED):
            if self._stopping:
                return None  # stop() came while looking
            concurrency = flow_from_data(run.flow_data, run.flow_path).concurrency
            if concurrency is None:
                if self._take(run):
                    return run
                continue  # another worker took it
            with self._locks.hold(run.repo, run.flow_id):
                running = [r for r in self.store.active_runs(run.repo, run.flow_id)
                           if r.status is Status.RUNNING]
                if len(running) < concurrency.limit and self._take(run):
                    return run
        return None

    def _take(self, run: RunRecord) -> bool:
        """Claim ``run``; a waiting note it carried goes (a queued run has no other)."""
        return self.store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED],
                                         owner=self.replica, error="" if run.error else None)

    def _poll_cancels(self) -> None:
        """Cancel the runs this replica executes that someone asked another to cancel."""
        done: set[str] = set()  # cancelled already: their requests stay until they end
        while True:
            self._cancel_wake.wait(self.cancel_poll)  # a notification, or the poll
            self._cancel_wake.clear()
            if self._poll_stop.is_set():
                return  # stop()
            try:
                asked = set(self.store.cancel_requests(self.replica))
            except Exception as exc:  # the database away: ask again in a second
                log.warning("cannot read cancel requests", extra={"reason": _cause(exc)})
                continue
            done &= asked
            with self._lock:
                self._cancel_unstarted &= asked  # ended without starting: forget them
            for run_id in asked - done:
                with self._lock:
                    execution = self._executions.get(run_id)
                    if execution is None:
                        self._cancel_unstarted.add(run_id)
                    else:
                        self._cancel_unstarted.discard(run_id)
                if execution is None:
                    continue  # claimed but not started yet: when it starts
                log.info("cancelling a run as asked of another replica", extra={"run": run_id})
                try:
                    execution.cancel()
                    done.add(run_id)
                except Exception:  # the engine away: try again in a second
                    log.exception("cannot cancel a run", extra={"run": run_id})

    def _emit(self, event: RunEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's failure must not stop the run
                log.exception("run listener failed", extra={"run": event.run_id})
