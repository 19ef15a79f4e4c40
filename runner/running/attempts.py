"""One attempt of one task: render it, start it on the backend, stream its
logs through the masker, wait (with the task's timeout), read its outputs,
record everything, and remove the container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.backends.base import (
    LABEL_ATTEMPT,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_TASK,
    Backend,
    TaskSpec,
)
from runner.errors import EngineAwayBeforeStart, EngineLost, FlowbotError, OwnershipLost
from runner.model.flows import PullPolicy, Task
from runner.running.logstore import (
    CUT,
    DEFAULT_MAX_BYTES,
    FileLogs,
    LogKey,
    LogResult,
    LogSink,
    LogStore,
    collect,
    size_text,
)
from runner.running.masking import Masker
from runner.running.outputs import MAX_OUTPUT_BYTES, OUTPUTS_CUT, read_outputs
from runner.running.render import render_task
from runner.running.workspace import inputs_dir, output_file, output_path, repo_dir
from runner.state.records import Status
from runner.state.store import RunStore

log = logging.getLogger(__name__)

RESTARTED = "runner restarted"
_EXIT = "exit code {code}"
_TIMED_OUT = "timed out after {seconds:g}s"
_NO_WORKSPACE = "the run's copy of the repository is gone (was the data dir cleaned?)"
_KILL_GRACE = 30.0  # seconds to wait for a killed container to report its exit
_LOG_DRAIN = 300.0  # seconds the log may still be read after the task ended
_STILL_READING = "log incomplete: still being read {seconds:g}s after the task ended"


@dataclass(frozen=True)
class Outcome:
    status: Status
    exit_code: int | None = None
    reason: str | None = None
    outputs: Mapping[str, str] | None = None


@dataclass
class AttemptEnv:
    """What every attempt of a run shares."""

    store: RunStore
    backend: Backend
    data_dir: Path
    owner: str
    run_id: str
    secrets: Mapping[str, str]  # the flow's declared secrets only
    sink: LogSink | None
    # Handles of live attempts, so a cancel/timeout can kill them from another thread.
    register: Callable[[str, str | None], bool]  # (task_id, handle or None) -> keep going?
    stop_status: Callable[[], Status | None]
    prepared: set[str] = field(default_factory=set)  # images made available this run
    log_max_bytes: int = DEFAULT_MAX_BYTES  # per attempt (FLOWBOT_LOG_MAX_BYTES)
    logs: LogStore | None = None  # where attempt logs go (None: files under data_dir)
    # the replica executing the run: its attempts start and end only while it still
    # does (None: no fence, e.g. a single process without replicas)
    replica: str | None = None

    @property
    def log_store(self) -> LogStore:
        return self.logs if self.logs is not None else FileLogs(self.data_dir)


def start(env: AttemptEnv, task: Task, attempt: int, context: Mapping[str, Any],
          base_env: Mapping[str, str], flow_env: Mapping[str, str]) -> Outcome:
    """Run attempt number ``attempt`` of ``task`` from the start."""
    location = env.log_store.location(LogKey(env.run_id, task.id, attempt))
    env.store.start_attempt(env.run_id, task.id, attempt, location, held_by=env.replica)
    workspace = repo_dir(env.data_dir, env.run_id)
    try:
        if not workspace.is_dir():
            raise FlowbotError(_NO_WORKSPACE)
        rendered = render_task(task, context, flow_env)
        out = output_file(env.data_dir, env.run_id, task.id, attempt)
        files = inputs_dir(env.data_dir, env.run_id)
        spec = TaskSpec(
            run_id=env.run_id, task_id=task.id, attempt=attempt, image=rendered.image,
            argv=rendered.argv, env={**base_env, **rendered.env}, workspace=workspace,
            workdir=task.workdir, output_file=out, network=task.network,
            cpus=task.resources.cpus, memory=task.resources.memory, pull=task.pull,
            labels={LABEL_RUN: env.run_id, LABEL_TASK: task.id,
                    LABEL_ATTEMPT: str(attempt), LABEL_OWNER: env.owner},
            inputs=files if files.is_dir() else None, pool=task.pool,
        )
        if task.pull is PullPolicy.ALWAYS or spec.image not in env.prepared:
            env.backend.prepare(spec)
            env.prepared.add(spec.image)  # once per run is enough unless pull: always
        handle = env.backend.start(spec)
    except EngineLost as exc:
        outcome = _finish(env, task.id, attempt, Outcome(Status.FAILED, reason=str(exc)))
        if not any(row.handle for row in env.store.attempts(env.run_id)):
            raise EngineAwayBeforeStart(task.id, str(exc)) from exc  # the run may queue again
        return outcome
    except FlowbotError as exc:
        return _finish(env, task.id, attempt, Outcome(Status.FAILED, reason=str(exc)))
    env.store.set_attempt_handle(env.run_id, task.id, attempt, handle)
    return follow(env, task, attempt, handle)


def follow(env: AttemptEnv, task: Task, attempt: int, handle: str) -> Outcome:
    """Collect a started (or re-attached) attempt to its end."""
    if not env.register(task.id, handle):
        env.backend.kill(handle)  # the run was stopped while this one started
    key = LogKey(env.run_id, task.id, attempt)
    logged = LogResult()
    pump = threading.Thread(
        target=collect, name=f"logs-{task.id}", daemon=True,
        args=(env.backend.logs(handle), env.log_store, key, env.secrets.values(), env.sink),
        kwargs={"max_bytes": env.log_max_bytes, "result": logged})
    pump.start()
    lost = False
    try:
        try:
            outcome = _wait(env, task, handle)
        except FlowbotError as exc:  # the engine lost the container
            outcome = Outcome(Status.FAILED, reason=str(exc))
        pump.join(_LOG_DRAIN)  # the rest of the log is read before the container goes
        outcome = _with_log(env, outcome, logged)
        _still_held(env)  # an adopter that took the run over records this end itself
        # stored before the container goes, so a crash here loses nothing
        return _finish(env, task.id, attempt, _with_outputs(env, task.id, attempt, outcome))
    except OwnershipLost:
        lost = True
        raise
    finally:
        env.register(task.id, None)
        if not lost:
            env.backend.remove(handle)  # else the adopter still follows it


def _still_held(env: AttemptEnv) -> None:
    """Raise :class:`OwnershipLost` when another replica executes the run now."""
    if env.replica is not None and (owner := env.store.owner_of(env.run_id)) != env.replica:
        raise OwnershipLost(env.run_id, owner)


def abandon(env: AttemptEnv, task_id: str, attempt: int) -> Outcome:
    """Record an attempt whose container vanished while the runner was down."""
    return _finish(env, task_id, attempt, Outcome(Status.FAILED, reason=RESTARTED))


def _wait(env: AttemptEnv, task: Task, handle: str) -> Outcome:
    code = env.backend.wait(handle, task.timeout)
    if code is None:
        env.backend.kill(handle)
        code = env.backend.wait(handle, _KILL_GRACE)
        reason = _TIMED_OUT.format(seconds=task.timeout or 0)
        return Outcome(Status.TIMED_OUT, code, reason)
    stopped = env.stop_status()
    if code == 0:
        return Outcome(Status.SUCCESS, 0)
    if stopped is not None:
        return Outcome(stopped, code, f"run {stopped.value.replace('_', ' ')}")
    return Outcome(Status.FAILED, code, _EXIT.format(code=code))


def _with_log(env: AttemptEnv, outcome: Outcome, logged: LogResult) -> Outcome:
    """The outcome with what happened to its log: cut at the cap (noted), or not
    stored whole (the attempt failed: its record would not be true)."""
    if logged.error is not None or not logged.done:
        problem = logged.error or _STILL_READING.format(seconds=_LOG_DRAIN)
        status = Status.FAILED if outcome.status is Status.SUCCESS else outcome.status
        return Outcome(status, outcome.exit_code, _joined(outcome.reason, problem))
    if logged.cut:
        note = CUT.format(size=size_text(env.log_max_bytes), dropped=logged.dropped)
        return Outcome(outcome.status, outcome.exit_code, _joined(outcome.reason, note))
    return outcome


def _joined(reason: str | None, note: str) -> str:
    return note if not reason else f"{reason}; {note}"


def _with_outputs(env: AttemptEnv, task_id: str, attempt: int, outcome: Outcome) -> Outcome:
    path = output_path(env.data_dir, env.run_id, task_id, attempt)
    masker = Masker(list(env.secrets.values()))
    found, cut = read_outputs(path)
    values = {k: masker.mask(v) for k, v in found.items()}
    reason = _joined(outcome.reason, OUTPUTS_CUT.format(size=size_text(MAX_OUTPUT_BYTES))) \
        if cut else outcome.reason
    return Outcome(outcome.status, outcome.exit_code, reason, values)


def _finish(env: AttemptEnv, task_id: str, attempt: int, outcome: Outcome) -> Outcome:
    env.store.finish_attempt(env.run_id, task_id, attempt, outcome.status,
                             outcome.exit_code, outcome.reason)
    log.info("attempt ended", extra={"run": env.run_id, "task": task_id, "attempt": attempt,
                                     "status": outcome.status.value})
    return outcome
