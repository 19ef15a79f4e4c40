"""The process backend: task attempts as plain host subprocesses. NO ISOLATION.

For machines without Docker. A task runs with the runner's own user, files and
network: it can read anything the runner can (other runs, the data dir, the
bot's secrets file). Use it only for flows you would run by hand.

* ``argv`` runs with the run's workspace as its working directory (the task's
  ``workdir`` is a container path and is not used), ``$FLOWBOT_OUTPUT`` is the
  host path of the output file.
* The environment is minimal (``PATH``, ``HOME``, ``LANG`` from the runner) plus
  the spec's env; the runner's other variables (tokens!) are not passed on.
* Each attempt is a new process group, so :meth:`kill` stops the whole tree, and
  when the main process exits its stray children are killed, as in a container.
* ``image``, ``pull``, ``network`` and ``resources`` cannot be honoured; each run
  that sets them gets one warning line in the log.
* Exit codes follow the shell: killed by signal N reads as ``128 + N``.
* :meth:`existing` only knows attempts started by this Python process. After a
  runner restart nothing is found, so reconciliation marks the attempts failed
  ("runner restarted") and the retry policy applies.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from runner.backends.base import DEFAULT_POOL, Capabilities, Existing, TaskSpec
from runner.errors import BackendError
from runner.model.flows import PullPolicy

log = logging.getLogger(__name__)

NO_ISOLATION = (
    "process backend: tasks run as host processes with NO isolation "
    "(same user, files and network as flowbot); use the docker backend for untrusted flows"
)
IGNORED = "process backend ignores {what} for run {run_id}: tasks run on the host"
CANNOT_START = "cannot start task {task_id}: {reason}"
UNKNOWN = "no process with handle {handle} (it was removed, or started before a restart)"
_CHUNK = 65536
_warned_isolation = False
_warned_lock = threading.Lock()


@dataclass
class _Attempt:
    spec: TaskSpec
    process: subprocess.Popen[bytes]


class ProcessBackend:
    """Runs each task attempt as a host subprocess (see the module docstring)."""

    name = "process"
    inputs_mount: str | None = None  # file inputs are read at their host paths

    @classmethod
    def capabilities(cls) -> Capabilities:
        """None of the isolation: a host process shares flowbot's network, files and
        limits. One host, so the default pool only."""
        return Capabilities(network_none=False, pids_limit=False, no_new_privileges=False,
                            read_only_root=False, resource_limits=False,
                            pools=frozenset({DEFAULT_POOL}))

    def __init__(self, owner: str = "default") -> None:
        self.owner = owner
        self._attempts: dict[str, _Attempt] = {}
        self._warned_runs: set[str] = set()
        self._lock = threading.Lock()
        _warn_once()

    def prepare(self, spec: TaskSpec) -> None:
        ignored = _ignored(spec)
        with self._lock:
            if not ignored or spec.run_id in self._warned_runs:
                return  # nothing to say, or said already for this run
            self._warned_runs.add(spec.run_id)
        what = ", ".join(ignored)
        log.warning(IGNORED.format(what=what, run_id=spec.run_id), extra={"run": spec.run_id})

    def start(self, spec: TaskSpec) -> str:
        unplaceable = self.capabilities().unplaceable(spec, self.name)
        if unplaceable is not None:  # admission refuses these already; never start one anyway
            raise BackendError(unplaceable)
        self.prepare(spec)  # the warning also when a caller skips prepare
        try:
            process = subprocess.Popen(
                list(spec.argv),
                cwd=spec.workspace,
                env=_environment(spec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(CANNOT_START.format(task_id=spec.task_id, reason=exc)) from exc
        handle = f"pid-{process.pid}"
        attempt = _Attempt(spec, process)
        with self._lock:
            self._attempts[handle] = attempt
        threading.Thread(target=_end_with_main, args=(attempt,), name=f"reap-{handle}",
                         daemon=True).start()
        log.info("started process %s", process.pid,
                 extra={"run": spec.run_id, "task": spec.task_id, "attempt": spec.attempt})
        return handle

    def logs(self, handle: str) -> Iterator[bytes]:
        attempt = self._get(handle)
        if attempt is None or attempt.process.stdout is None:
            return  # removed: nothing more to read
        pipe = attempt.process.stdout
        while True:
            try:
                chunk = os.read(pipe.fileno(), _CHUNK)  # whatever is there, unbuffered
            except (OSError, ValueError):
                return  # the pipe was closed by remove()
            if not chunk:
                return  # end of output: the process tree closed its stdout
            yield chunk

    def wait(self, handle: str, timeout: float | None) -> int | None:
        attempt = self._get(handle)
        if attempt is None:
            raise BackendError(UNKNOWN.format(handle=handle))
        try:
            code = attempt.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None  # still running
        return _shell_code(code)

    def kill(self, handle: str) -> None:
        attempt = self._get(handle)
        if attempt is None:
            return  # already removed
        _kill_group(attempt)

    def remove(self, handle: str) -> None:
        with self._lock:
            attempt = self._attempts.pop(handle, None)
        if attempt is None:
            return  # already removed
        _kill_group(attempt)
        attempt.process.wait()
        if attempt.process.stdout is not None:
            attempt.process.stdout.close()

    def existing(self, owner: str) -> list[Existing]:
        if owner != self.owner:
            return []  # this backend only knows its own attempts
        with self._lock:
            attempts = dict(self._attempts)
        found = []
        for handle, attempt in attempts.items():
            code = attempt.process.poll()
            spec = attempt.spec
            found.append(Existing(
                handle=handle, run_id=spec.run_id, task_id=spec.task_id, attempt=spec.attempt,
                running=code is None, exit_code=None if code is None else _shell_code(code),
            ))
        return found

    def _get(self, handle: str) -> _Attempt | None:
        with self._lock:
            return self._attempts.get(handle)


def _end_with_main(attempt: _Attempt) -> None:
    """As in a container, the task ends with its main process: stray background
    children are killed too, which also closes the log pipe."""
    attempt.process.wait()
    _kill_group(attempt)


def _kill_group(attempt: _Attempt) -> None:
    try:
        os.killpg(attempt.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _shell_code(code: int) -> int:
    return 128 - code if code < 0 else code


def _environment(spec: TaskSpec) -> dict[str, str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    return {**base, **spec.env, "FLOWBOT_OUTPUT": str(spec.output_file)}


def _ignored(spec: TaskSpec) -> list[str]:
    ignored = [f"image {spec.image}"]
    if spec.pull is not PullPolicy.IF_NOT_PRESENT:
        ignored.append(f"pull: {spec.pull.value}")
    if spec.network != "bridge":
        ignored.append(f"network: {spec.network}")
    if spec.cpus is not None or spec.memory is not None:
        ignored.append("resources")
    return ignored


def _warn_once() -> None:
    global _warned_isolation
    with _warned_lock:
        if _warned_isolation:
            return  # one loud warning per runner process is enough
        _warned_isolation = True
    log.warning(NO_ISOLATION)
