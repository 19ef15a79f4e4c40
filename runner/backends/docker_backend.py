"""The default backend: each task attempt is one container on a Docker engine.

Containers get safe defaults: never privileged, ``no-new-privileges``, every
capability dropped, no Docker socket, and the operator's
:class:`~runner.backends.limits.TaskLimits`: a memory and CPU limit (the flow's
``resources`` within the operator's bounds, else the defaults), a non-root
user, a read-only root filesystem with a tmpfs ``/tmp``, a pids limit and a
capped ``json-file`` log. ``network: none`` is honoured, and the flowbot labels
let the engine find the containers after a restart. Only two host paths are
mounted, both writable: the run's workspace (at the task's workdir) and the
attempt's output file (at ``/flowbot/<name>``, as ``$FLOWBOT_OUTPUT``). The
single file rather than its directory is mounted so a task cannot touch other
tasks' outputs.

The task runs as the limits' uid:gid (not the image's user). When that is not
flowbot's own user (flowbot runs as root), the run's workspace and the output
file are handed to it first (``chown``, never following links), so the task can
write them and flowbot, as root, can still remove them. The workspace paths
must be on the engine's own filesystem (a local engine, or a remote one sharing
the dir).

A lost engine is waited for: every call that fails on the transport (socket
gone, connection refused or cut) is retried, the log stream resumed where it
stopped (by the engine's timestamps), until the engine answers again or
``reconnect_seconds`` pass; only then does the call fail with
:data:`ENGINE_LOST`. A container that exits meanwhile keeps its exit code, so
the attempt ends as the task did.

``spec.argv[0]`` replaces the image's entrypoint, so ``sh -ec <script>`` runs as
written whatever entrypoint the image declares.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from runner.backends.base import (
    DEFAULT_POOL,
    LABEL_ATTEMPT,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_TASK,
    Capabilities,
    Existing,
    TaskSpec,
)
from runner.backends.limits import TaskLimits
from runner.errors import BackendError, EngineLost
from runner.model.flows import PullPolicy
from runner.model.imageref import memory_bytes

log = logging.getLogger(__name__)

OUTPUT_DIR = "/flowbot"
NOT_PRESENT = (
    "image {image} is not present and pull: never is set; build or pull it on the runner host"
)
PULL_FAILED = "cannot pull image {image}: {reason}"
UNREACHABLE = "cannot reach the Docker engine at {where}: {reason} — is dockerd running?"
NO_WORKSPACE = "the run's workspace {path} is missing; was the data dir cleaned?"
ENGINE_FAILED = "the Docker engine failed while {action}: {reason}"
ENGINE_LOST = (
    "lost the Docker engine at {where} while {action} and it did not answer again within "
    "{seconds:g}s (FLOWBOT_ENGINE_RECONNECT_SECONDS): {reason}"
)
OVER_LIMIT = "run {run_id}: {problem}"
CANNOT_HAND_OVER = (
    "cannot give the workspace {path} to the task user {uid}:{gid}: {reason}; "
    "run flowbot as root or leave FLOWBOT_TASK_USER empty"
)
_RETRY_PAUSE = 0.5  # seconds between pings while the engine is away
_T = TypeVar("_T")


def engine_location() -> str:
    """Where the client connects: ``$DOCKER_HOST`` or the local socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn docker SDK and transport errors into BackendError (cause kept)."""
    try:
        yield
    except docker.errors.APIError as exc:
        reason = exc.explanation or str(exc)
        raise BackendError(ENGINE_FAILED.format(action=action, reason=reason)) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise BackendError(UNREACHABLE.format(where=engine_location(), reason=exc)) from exc


def _lost(exc: BackendError) -> bool:
    """The error is the engine being unreachable (not an answer from it)."""
    cause = exc.__cause__
    if isinstance(cause, docker.errors.APIError):
        return False  # the engine answered
    return isinstance(cause, (docker.errors.DockerException, requests.exceptions.RequestException))


def _gone(exc: BackendError) -> bool:
    """The error says the object no longer exists or no longer runs."""
    cause = exc.__cause__
    if isinstance(cause, docker.errors.NotFound):
        return True
    return isinstance(cause, docker.errors.APIError) and cause.status_code == 409


class DockerBackend:
    """Runs each task attempt as a container (see the module docstring)."""

    name = "docker"
    inputs_mount: str | None = "/inputs"

    @classmethod
    def capabilities(cls) -> Capabilities:
        """Every isolation the engine offers, on this one host: the default pool only."""
        return Capabilities(network_none=True, pids_limit=True, no_new_privileges=True,
                            read_only_root=True, resource_limits=True,
                            pools=frozenset({DEFAULT_POOL}))

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        owner: str = "default",
        pids_limit: int | None = None,
        limits: TaskLimits | None = None,
        reconnect_seconds: float = 120.0,
    ) -> None:
        self.owner = owner
        self.limits = (limits or TaskLimits()).checked()
        self.pids_limit = self.limits.pids if pids_limit is None else pids_limit
        self.reconnect_seconds = reconnect_seconds
        self._client = client
        self._lock = threading.Lock()
        self._handover = threading.Lock()  # one workspace hand-over at a time
        self._leftovers: set[str] = set()  # containers whose removal the engine missed
        self._lost_since: float | None = None  # when the current engine outage began

    @property
    def client(self) -> docker.DockerClient:
        """The engine client, connected on first use so construction never fails."""
        with self._lock:
            if self._client is None:
                with engine_errors("connecting"):
                    self._client = docker.DockerClient.from_env(max_pool_size=64)
            return self._client

    def prepare(self, spec: TaskSpec) -> None:
        if spec.pull is PullPolicy.ALWAYS:
            self._pull(spec.image)
            return  # pulled (or raised)
        if self._present(spec.image):
            return  # if-not-present / never: the local image is used
        if spec.pull is PullPolicy.NEVER:
            raise BackendError(NOT_PRESENT.format(image=spec.image))
        self._pull(spec.image)

    def start(self, spec: TaskSpec) -> str:
        unplaceable = self.capabilities().unplaceable(spec, self.name)
        if unplaceable is not None:  # admission refuses these already: a pool this host is not
            raise BackendError(unplaceable)
        self.ready_host_paths(spec)
        container = self._create(spec)
        self._remove_leftovers()
        try:
            self._retrying(f"starting the container for task {spec.task_id}", container.start)
        except BackendError:
            self.remove(str(container.id))
            raise
        log.info("started container %s", container.short_id, extra=_context(spec))
        return str(container.id)

    def ready_host_paths(self, spec: TaskSpec) -> None:
        """Check the task's resource request and workspace, create its output file and
        hand both to the task user (the swarm backend's first step too)."""
        problem = self.limits.request_problem(spec.task_id, spec.cpus, spec.memory, "the flow")
        if problem is not None:  # admission refuses these already; never start one anyway
            raise BackendError(OVER_LIMIT.format(run_id=spec.run_id, problem=problem))
        # Docker would silently create a missing bind source as a root-owned directory.
        if not spec.workspace.is_dir():
            raise BackendError(NO_WORKSPACE.format(path=spec.workspace))
        if not spec.output_file.is_file():
            spec.output_file.parent.mkdir(parents=True, exist_ok=True)
            spec.output_file.touch()
        self._hand_over(spec)

    def logs(self, handle: str) -> Iterator[bytes]:
        container = self._container(handle)
        if container is None:
            return  # already removed: nothing more to say
        cursor = _LogCursor()  # resumes the stream after a lost engine (module docstring)
        follow = True
        while True:
            try:
                with engine_errors("reading logs"):
                    stream = container.logs(stdout=True, stderr=True, stream=True, follow=follow,
                                            timestamps=True, since=cursor.since())
                    try:
                        yield from cursor.strip(stream)
                    finally:
                        stream.close()  # also when the caller stops reading early
            except BackendError as exc:
                if not _lost(exc):
                    raise
                try:
                    self._await_engine("reading logs", exc)
                except BackendError:
                    return  # gone for good: wait() reports it as the attempt's failure
                continue  # the engine is back: resume after the last line read
            if not follow:
                return  # the whole stored log has been read
            if not self._still_running(container):
                # The engine (json-file, 20.10) can end a follow stream when the task
                # exits before it has sent all of the log: read the rest, unfollowed.
                follow = False

    def wait(self, handle: str, timeout: float | None) -> int | None:
        container = self._container(handle)
        if container is None:
            raise BackendError(f"container {handle[:12]} is gone; its exit code is lost")
        if timeout is not None and timeout <= 0:
            return self._exit_code_now(container)  # requests rejects a zero timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return self._exit_code_now(container)  # the timeout passed while reconnecting
            try:
                with engine_errors("waiting for a container"):
                    result = container.wait(timeout=left)
                self._lost_since = None  # the engine answered
                return int(result["StatusCode"])
            except BackendError as exc:
                if left is not None and _is_timeout(exc.__cause__):
                    return None  # the task is still running
                if not _lost(exc):
                    raise
                self._await_engine("waiting for a container", exc)

    def kill(self, handle: str) -> None:
        container = self._container(handle)
        if container is None:
            return  # already gone
        try:
            self._retrying(f"killing container {handle[:12]}", container.kill)
        except BackendError as exc:
            if _gone(exc):
                return  # removed meanwhile, or not running any more
            raise

    def remove(self, handle: str) -> None:
        try:
            self._retrying("removing a container", lambda: self.client.api.remove_container(
                handle, force=True, v=True))
        except BackendError as exc:
            if _gone(exc):
                return  # already gone, or its removal is in progress
            if not _lost(exc):
                raise
            with self._lock:
                self._leftovers.add(handle)  # removed by the next start once the engine is back
            log.warning("could not remove a container: the engine is away",
                        extra={"handle": handle[:12]})

    def existing(self, owner: str) -> list[Existing]:
        with engine_errors("listing containers"):
            found = self.client.containers.list(
                all=True, filters={"label": f"{LABEL_OWNER}={owner}"}
            )
        return [_existing(container) for container in found]

    def engine_answers(self) -> bool:
        """True if the engine answers a ping now (no waiting)."""
        if self._socket_refuses():
            return False  # no SDK call: it leaks the socket of a failed unix connect
        try:
            with engine_errors("pinging"):
                return bool(self.client.ping())
        except BackendError:
            return False

    def _socket_refuses(self) -> bool:
        """True if the engine's unix socket refuses a connection (False for TCP engines)."""
        try:
            adapter = self.client.api.get_adapter(self.client.api.base_url)
        except BackendError:
            return True  # no client can even be made
        path = getattr(adapter, "socket_path", None)
        if not isinstance(path, str):
            return False  # not a unix socket: let the ping tell
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(_RETRY_PAUSE)
            try:
                probe.connect(path)
            except OSError:
                return True
        return False

    def _retrying(self, action: str, call: Callable[[], _T]) -> _T:
        """``call()``, retried while the engine is unreachable (see the module docstring)."""
        while True:
            try:
                with engine_errors(action):
                    result = call()
                self._lost_since = None  # the engine answered
                return result
            except BackendError as exc:
                if not _lost(exc):
                    raise
                self._await_engine(action, exc)

    def _await_engine(self, action: str, error: BackendError) -> None:
        """Return once the engine answers; raise ENGINE_LOST once it has been away for
        ``reconnect_seconds`` (one budget per outage, whichever call noticed it first)."""
        log.warning("the Docker engine is unreachable; waiting for it",
                    extra={"action": action, "reason": str(error.__cause__)})
        with self._lock:
            self._lost_since = self._lost_since or time.monotonic()
            deadline = self._lost_since + self.reconnect_seconds
        while True:
            if self.engine_answers():
                self._lost_since = None
                log.info("the Docker engine answers again", extra={"action": action})
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise EngineLost(ENGINE_LOST.format(
                    where=engine_location(), action=action, seconds=self.reconnect_seconds,
                    reason=error.__cause__)) from error.__cause__
            time.sleep(min(_RETRY_PAUSE, left))

    def _remove_leftovers(self) -> None:
        with self._lock:
            leftovers, self._leftovers = self._leftovers, set()
        for handle in leftovers:
            self.remove(handle)

    def _hand_over(self, spec: TaskSpec) -> None:
        """Give the workspace and output file to the task user if that is not us."""
        uid, gid = self.limits.task_user()
        if uid == os.getuid():
            return  # the task runs as flowbot's own user: it owns everything already
        try:
            with self._handover:  # the walk ends before any container of the run starts
                os.chown(spec.output_file, uid, gid, follow_symlinks=False)
                if spec.workspace.stat().st_uid != uid:
                    _chown_tree(spec.workspace, uid, gid)
        except OSError as exc:
            raise BackendError(CANNOT_HAND_OVER.format(
                path=spec.workspace, uid=uid, gid=gid, reason=exc.strerror or exc)) from exc

    def _present(self, image: str) -> bool:
        try:
            self._retrying(f"looking up image {image}", lambda: self.client.images.get(image))
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.ImageNotFound):
                return False
            raise
        return True

    def _pull(self, image: str) -> None:
        repository, tag = parse_repository_tag(image)
        client = self.client
        try:
            self._retrying(f"pulling {image}",
                           lambda: client.images.pull(repository, tag=tag or "latest"))
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, docker.errors.APIError):
                reason = cause.explanation or str(cause)
                raise BackendError(PULL_FAILED.format(image=image, reason=reason)) from cause
            raise
        log.info("pulled %s", image, extra={"image": image})

    def _create(self, spec: TaskSpec) -> Container:
        output = f"{OUTPUT_DIR}/{spec.output_file.name}"
        uid, gid = self.limits.task_user()
        environment = {**spec.env, "FLOWBOT_OUTPUT": output}
        if self.limits.read_only_root:
            environment.setdefault("HOME", "/tmp")  # the one writable place besides the workspace
        action = f"creating the container for task {spec.task_id}"
        while True:
            try:
                with engine_errors(action):
                    return self.client.containers.create(
                        spec.image,
                        entrypoint=list(spec.argv[:1]),
                        command=list(spec.argv[1:]),
                        environment=environment,
                        working_dir=spec.workdir,
                        user=f"{uid}:{gid}",
                        labels=self._labels(spec),
                        detach=True,
                        **self._host_config(spec, output),
                    )
            except BackendError as exc:
                if not _lost(exc):
                    raise
                self._await_engine(action, exc)
            found = self._created_before(spec)  # a create cut off on the way back did happen
            if found is not None:
                return found

    def _created_before(self, spec: TaskSpec) -> Container | None:
        """This attempt's container, if an earlier create reached the engine."""
        labels = self._labels(spec)
        wanted = [f"{k}={labels[k]}" for k in (LABEL_OWNER, LABEL_RUN, LABEL_TASK, LABEL_ATTEMPT)]
        found = self._retrying("listing containers", lambda: self.client.containers.list(
            all=True, filters={"label": wanted}))
        return found[0] if found else None

    def _host_config(self, spec: TaskSpec, output: str) -> dict[str, Any]:
        cpus, memory = self.limits.resolve(spec.cpus, spec.memory)
        tmp_size = memory_bytes(self.limits.tmp_size)
        config: dict[str, Any] = {
            "privileged": False,
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "pids_limit": self.pids_limit,
            "network_mode": spec.network,
            "auto_remove": False,
            "nano_cpus": int(cpus * 1_000_000_000),
            "mem_limit": memory,
            "memswap_limit": memory,  # no swap on top of the limit
            "read_only": self.limits.read_only_root,
            "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={tmp_size},mode=1777"},
            "log_config": {"type": "json-file", "config": {
                "max-size": self.limits.log_max_size, "max-file": "2"}},
            "volumes": {
                str(spec.workspace.resolve()): {"bind": spec.workdir, "mode": "rw"},
                str(spec.output_file.resolve()): {"bind": output, "mode": "rw"},
            },
        }
        if spec.inputs is not None:  # the run's file inputs, which no task may change
            config["volumes"][str(spec.inputs.resolve())] = {
                "bind": self.inputs_mount, "mode": "ro"}
        return config

    def _labels(self, spec: TaskSpec) -> dict[str, str]:
        return {
            **spec.labels,
            LABEL_RUN: spec.run_id,
            LABEL_TASK: spec.task_id,
            LABEL_ATTEMPT: str(spec.attempt),
            LABEL_OWNER: self.owner,
        }

    def _container(self, handle: str) -> Container | None:
        try:
            return self._retrying("looking up a container",
                                  lambda: self.client.containers.get(handle))
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise

    def _still_running(self, container: Container) -> bool:
        try:
            return self._exit_code_now(container) is None
        except BackendError as exc:
            if _gone(exc) or _lost(exc):
                return False  # removed meanwhile, or the engine is gone for good (wait says)
            raise

    def _exit_code_now(self, container: Container) -> int | None:
        self._retrying("inspecting a container", container.reload)
        state = container.attrs["State"]
        return None if state.get("Running") else int(state["ExitCode"])

    def __repr__(self) -> str:
        return f"DockerBackend(owner={self.owner!r}, engine={engine_location()!r})"


def _is_timeout(exc: BaseException | None) -> bool:
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc)


class _LogCursor:
    """Where a timestamped log stream got to, so a resumed stream skips what was read.

    Each frame is one log message prefixed by the engine with a fixed-width
    RFC 3339 timestamp (``2006-01-02T15:04:05.000000000Z``), which sorts as text.
    """

    _WIDTH = 30

    def __init__(self) -> None:
        self.last: bytes | None = None  # the newest timestamp yielded

    def since(self) -> float | None:
        if self.last is None:
            return None  # from the start
        text = self.last.decode()
        seconds = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        return seconds.timestamp() + int(text[20:29]) / 1e9 - 1e-6  # skip() drops repeats

    def strip(self, frames: Iterable[bytes]) -> Iterator[bytes]:
        cut = self.last  # None on the first stream
        for frame in frames:
            stamp, sep, payload = frame.partition(b" ")
            if not sep or len(stamp) != self._WIDTH:
                yield frame  # not timestamped: pass it on as it came
                continue
            if cut is not None and stamp <= cut:
                continue  # read before the engine went away
            if self.last is None or stamp > self.last:
                self.last = stamp
            yield payload


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    """chown ``top`` and everything under it, never following a link (by dir fd)."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for _dir, subdirs, files, fd in os.fwalk(top, follow_symlinks=False):
        for name in (*subdirs, *files):
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)


def _existing(container: Container) -> Existing:
    labels = container.labels
    state = container.attrs.get("State")
    if not isinstance(state, dict):
        state = {"Running": container.status == "running"}  # a sparse listing
    running = bool(state.get("Running"))
    exit_code = None if running else state.get("ExitCode")
    return Existing(
        handle=str(container.id),
        run_id=labels.get(LABEL_RUN, ""),
        task_id=labels.get(LABEL_TASK, ""),
        attempt=int(labels.get(LABEL_ATTEMPT, "0") or 0),
        running=running,
        exit_code=None if exit_code is None else int(exit_code),
    )


def _context(spec: TaskSpec) -> dict[str, Any]:
    return {"run": spec.run_id, "task": spec.task_id, "attempt": spec.attempt}
