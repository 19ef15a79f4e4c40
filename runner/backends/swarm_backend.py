"""Tasks across many machines: each attempt is one Docker Swarm service.

The service has one replica and restart condition ``none``, so the task runs
once; its exit code is read from the task's ``Status.ContainerStatus.ExitCode``.
``replicated-job`` services are not used: on Docker 20.10 removing one leaves
its container running (moby issue 44312).

- Workspaces: the SHARED VOLUME approach. The operator mounts the flowbot data
  dir at the same path on every node (replicas of the bot share it already), so
  the run's workspace, its file inputs (read-only, at ``/inputs``) and the
  attempt's ``$FLOWBOT_OUTPUT`` file are bind-mounted exactly as the docker
  backend does; see docs/scaling.md for why, and for the other approach.
- Logs: ``service logs --follow`` never ends on this engine (moby issue 36626),
  so a watcher closes the stream once the task reaches a final state, and a last
  unfollowed read from the newest timestamp seen brings the lines the stream had
  not delivered yet.
- Pools: ``pool: gpu`` places the task with the constraint
  ``node.labels.flowbot.pool==gpu``; the default pool may run on any node. A
  task no node can take stays ``pending``: after ``pending_seconds``
  (FLOWBOT_SWARM_PENDING_SECONDS) :meth:`SwarmBackend.wait` fails it with an
  error naming the pool.
- Kill (cancel, timeout) removes the service and returns once its container is
  gone; the exit code (137 for a task still running) is kept for ``wait``.
- Isolation: swarm services cannot have ``network: none``, a pids limit or
  no-new-privileges (:meth:`SwarmBackend.capabilities` says so and validation
  refuses such flows). Everything else follows the docker backend: the
  operator's CPU/memory limits as service resource limits, its task user, a
  read-only root with a tmpfs ``/tmp`` (``noexec`` on this engine), every
  capability dropped, a capped ``json-file`` log, the flowbot labels on the
  service and its container.
- A lost engine is waited for as on the docker backend
  (FLOWBOT_ENGINE_RECONNECT_SECONDS): calls are retried, the log stream is
  followed again from the newest timestamp read, and a service is created under
  a name made from its attempt, so a create retried after a lost answer finds
  the service the first one made instead of starting the task twice. Past the
  budget a call raises EngineLost, and :meth:`SwarmBackend.engine_answers` pings
  the manager: a run whose first task could not start goes back to the queue and
  the workers claim nothing until the manager answers (as on the docker backend).
- Images: the image is passed by the name the flow gives, and the service is
  created through the API, which (unlike ``docker service create`` without
  ``--no-resolve-image``) never asks a registry for its digest; a node without
  the image tries to pull it, and a task that still has none is ``rejected``:
  the error names the image and the node's message.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker.types import (
    ContainerSpec,
    DriverConfig,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)

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
from runner.backends.docker_backend import (
    OUTPUT_DIR,
    DockerBackend,
    _LogCursor,
    _lost,
    engine_errors,
    engine_location,
)
from runner.backends.limits import TaskLimits
from runner.errors import BackendError
from runner.model.imageref import memory_bytes

log = logging.getLogger(__name__)

LABEL_POOL = "dev.flowbot.pool"
POOL_LABEL = "flowbot.pool"  # the node label a pool is placed by
SERVICE_ID_LABEL = "com.docker.swarm.service.id"  # the engine's label on a task's container
KILLED = 137  # 128 + SIGKILL: the exit code of a task stopped while running
FINAL_STATES = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})

NOT_A_MANAGER = (
    "the Docker engine at {where} is not a swarm manager ({state}); run `docker swarm init` "
    "there (or point DOCKER_HOST at a manager), or use FLOWBOT_BACKEND=docker"
)
NO_NETWORK_NONE = (
    "task {task} asks for network: none, which swarm services cannot give; use the docker "
    "backend for it, or let the task have a network"
)
REJECTED = "the swarm rejected task {task} (image {image}) on node {node}: {message}"
NOT_STARTED = "task {task} (image {image}) could not start on node {node}: {message}"
STILL_PENDING = (
    "task {task} waited {seconds:g}s (FLOWBOT_SWARM_PENDING_SECONDS) and no node took it: "
    "{message}; pool {pool!r} needs a node labelled {label}={pool} "
    "(docker node update --label-add {label}={pool} <node>)"
)
GONE = "service {handle} is gone; its exit code is lost"
_T = TypeVar("_T")
LINGERING = "the container of service {handle} was still there {seconds:g}s after its removal"


@dataclass(frozen=True)
class _Status:
    """Where a service's one task is: its state, exit code and the node's words."""

    state: str  # "" before the task exists
    exit_code: int | None
    container: str  # "" until the node created the container
    message: str
    node: str
    created: float | None = None  # the task's creation, seconds since the epoch (engine's)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _epoch(stamp: object) -> float | None:
    """An engine timestamp (RFC 3339, nanoseconds) as seconds since the epoch."""
    if not isinstance(stamp, str) or not stamp:
        return None
    head, dot, fraction = stamp.rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(head + (dot + fraction[:6] if dot else ""))
    except ValueError:
        return None
    if moment.year < 2000:
        return None  # Go's zero time: not recorded
    return moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()


class SwarmBackend:
    """Runs each task attempt as a one-replica swarm service (see the module docstring)."""

    name = "swarm"
    inputs_mount: str | None = "/inputs"

    @classmethod
    def capabilities(cls) -> Capabilities:
        """No ``network: none``, pids limit or no-new-privileges; any label-placed pool."""
        return Capabilities(network_none=False, pids_limit=False, no_new_privileges=False,
                            read_only_root=True, resource_limits=True, pools=None)

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        owner: str = "default",
        limits: TaskLimits | None = None,
        pending_seconds: float = 60.0,
        reconnect_seconds: float = 120.0,
        poll_seconds: float = 0.1,
        removal_seconds: float = 60.0,
    ) -> None:
        self.owner = owner
        # The image checks, the client and the workspace hand-over are the docker backend's.
        self._docker = DockerBackend(client=client, owner=owner, limits=limits,
                                     reconnect_seconds=reconnect_seconds)
        self.limits = self._docker.limits
        self.pending_seconds = pending_seconds
        self.poll_seconds = poll_seconds
        self.removal_seconds = removal_seconds
        self._lock = threading.Lock()
        self._killed: dict[str, int] = {}  # handle -> exit code, for wait() after kill()
        self._pending_since: dict[str, float] = {}  # handle -> when first seen pending
        self._nodes: dict[str, str] = {}  # node id -> hostname
        # handle -> set once wait() (or kill/remove) saw the task end: its log stream closes
        self._ended: dict[str, threading.Event] = {}

    @property
    def client(self) -> docker.DockerClient:
        return self._docker.client

    def engine_answers(self) -> bool:
        """True if the swarm manager's engine answers a ping now (no waiting): the run
        service claims no queued run while it does not, after one went back to the queue
        because the engine was lost before it started."""
        return self._docker.engine_answers()

    def prepare(self, spec: TaskSpec) -> None:
        self._docker.prepare(spec)  # on the manager's engine; other nodes pull when they need

    def start(self, spec: TaskSpec) -> str:
        if spec.network == "none":  # validation refuses these; never run one less isolated
            raise BackendError(NO_NETWORK_NONE.format(task=spec.task_id))
        self._docker.ready_host_paths(spec)
        labels = {**self._docker._labels(spec), LABEL_POOL: spec.pool}
        handle = self._create(spec, labels)
        log.info("created service %s", handle[:12],
                 extra={"run": spec.run_id, "task": spec.task_id, "attempt": spec.attempt})
        return handle

    def logs(self, handle: str) -> Iterator[bytes]:
        cursor = _LogCursor()
        try:
            if self._status(handle) is None:
                return  # removed: nothing more to say
            while not (yield from self._follow(handle, cursor)):
                # the stream broke (a lost engine): follow again from the cursor
                status = self._status(handle)  # waits for the engine to answer
                if status is None:
                    return
                if status.final:
                    break
                time.sleep(self.poll_seconds)
            rest = self._call("reading service logs", lambda: self.client.api.service_logs(
                handle, stdout=True, stderr=True, timestamps=True,
                since=cursor.since() or 0, is_tty=False))
            yield from cursor.strip(rest)
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound) or _lost(exc):
                return  # removed meanwhile, or the engine is gone for good (wait says)
            raise

    def _follow(self, handle: str, cursor: _LogCursor) -> Generator[bytes, None, bool]:
        """Yield the followed log from the cursor on; returns True once the watcher
        closed it for a task that ended, False when the stream broke (engine lost)."""
        api = self.client.api

        def open_stream() -> Any:
            response = api._get(api._url("/services/{0}/logs", handle), stream=True, params={
                "follow": True, "stdout": True, "stderr": True, "timestamps": True,
                "since": cursor.since() or 0})
            api._raise_for_status(response)
            return response

        response = self._call("reading service logs", open_stream)
        done, closed = threading.Event(), threading.Event()
        watcher = threading.Thread(target=self._close_when_final, name=f"logs-{handle[:12]}",
                                   args=(handle, response, done, closed), daemon=True)
        watcher.start()
        try:
            yield from cursor.strip(api._multiplexed_response_stream_helper(response))
        except (OSError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            pass  # cut: by the watcher (the task ended) or by a lost engine
        finally:
            done.set()
            response.close()
        return closed.is_set()

    def wait(self, handle: str, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if handle in self._killed:
                    return self._killed[handle]
            status = self._status(handle)
            if status is None or status.final:
                self._ended_event(handle).set()
            if status is None:
                with self._lock:  # killed meanwhile by another thread
                    if handle in self._killed:
                        return self._killed[handle]
                raise BackendError(GONE.format(handle=handle[:12]))
            if status.final:
                return self._exit_code(handle, status)
            try:
                self._check_pending(handle, status)
            except BackendError:
                self._ended_event(handle).set()
                raise
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            time.sleep(self.poll_seconds if left is None else min(self.poll_seconds, left))

    def kill(self, handle: str) -> None:
        status = self._status(handle)
        if status is None:
            return  # already gone
        code = KILLED
        if status.final and status.container:
            code = status.exit_code if status.exit_code is not None else KILLED
        with self._lock:
            self._killed[handle] = code
        self._ended_event(handle).set()
        self._remove_service(handle)

    def remove(self, handle: str) -> None:
        with self._lock:
            self._killed.pop(handle, None)
            self._pending_since.pop(handle, None)
            ended = self._ended.pop(handle, None)
        if ended is not None:
            ended.set()  # a log stream still open ends
        self._remove_service(handle)

    def existing(self, owner: str) -> list[Existing]:
        services = self._call("listing services", lambda: self.client.api.services(
            filters={"label": f"{LABEL_OWNER}={owner}"}))
        found = []
        for service in services:
            handle = str(service["ID"])
            status = self._status(handle)
            if status is None:
                continue  # removed while listing
            labels = service["Spec"].get("Labels") or {}
            running = not status.final
            found.append(Existing(
                handle=handle,
                run_id=labels.get(LABEL_RUN, ""),
                task_id=labels.get(LABEL_TASK, ""),
                attempt=int(labels.get(LABEL_ATTEMPT, "0") or 0),
                running=running,
                exit_code=None if running or not status.container else status.exit_code,
            ))
        return found

    def check_manager(self) -> None:
        """Raise BackendError unless the engine is an active swarm manager."""
        with engine_errors("asking the engine about its swarm"):
            swarm = self.client.info().get("Swarm") or {}
        state = swarm.get("LocalNodeState", "inactive")
        if state != "active" or not swarm.get("ControlAvailable"):
            raise BackendError(NOT_A_MANAGER.format(where=engine_location(), state=state))

    def _task_template(self, spec: TaskSpec, labels: dict[str, str]) -> TaskTemplate:
        limits = self.limits
        uid, gid = limits.task_user()
        output = f"{OUTPUT_DIR}/{spec.output_file.name}"
        environment = {**spec.env, "FLOWBOT_OUTPUT": output}
        if limits.read_only_root:
            environment.setdefault("HOME", "/tmp")
        mounts = [
            Mount(spec.workdir, str(spec.workspace.resolve()), type="bind"),
            Mount(output, str(spec.output_file.resolve()), type="bind"),
            Mount("/tmp", None, type="tmpfs", tmpfs_size=memory_bytes(limits.tmp_size),
                  tmpfs_mode=0o1777),
        ]
        if spec.inputs is not None and self.inputs_mount is not None:
            mounts.append(Mount(self.inputs_mount, str(spec.inputs.resolve()), type="bind",
                                read_only=True))
        container = ContainerSpec(
            spec.image,
            command=list(spec.argv[:1]),
            args=list(spec.argv[1:]),
            env=environment,
            workdir=spec.workdir,
            user=f"{uid}:{gid}",
            labels=labels,
            mounts=mounts,
            read_only=limits.read_only_root,
            stop_signal="SIGKILL",  # a killed task ends at once, as on the docker backend
            stop_grace_period=1_000_000_000,
            cap_drop=["ALL"],
        )
        cpus, memory = limits.resolve(spec.cpus, spec.memory)
        placement = None
        if spec.pool != DEFAULT_POOL:
            placement = Placement(constraints=[f"node.labels.{POOL_LABEL}=={spec.pool}"])
        return TaskTemplate(
            container,
            resources=Resources(cpu_limit=int(cpus * 1_000_000_000), mem_limit=memory),
            restart_policy=RestartPolicy(condition="none", max_attempts=0),
            placement=placement,
            log_driver=DriverConfig("json-file", {
                "max-size": limits.log_max_size, "max-file": "2"}),
        )

    def _status(self, handle: str) -> _Status | None:
        """The service's task now, or None when the service is gone."""
        try:
            tasks = self._call("listing a service's tasks",
                               lambda: self.client.api.tasks(filters={"service": handle}))
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise
        if not tasks:
            return _Status("", None, "", "", "")
        task = max(tasks, key=lambda t: str(t.get("CreatedAt", "")))  # restart none: one
        status = task.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        code = container.get("ExitCode")
        return _Status(
            state=str(status.get("State", "")),
            exit_code=None if code is None else int(code),
            container=str(container.get("ContainerID") or ""),
            message=str(status.get("Err") or status.get("Message") or ""),
            node=str(task.get("NodeID") or ""),
            created=_epoch(task.get("CreatedAt")),
        )

    def _exit_code(self, handle: str, status: _Status) -> int:
        """The exit code of a task in a final state; BackendError if it never ran."""
        if status.state == "rejected" or not status.container:
            image, task = self._image_and_task(handle)
            template = REJECTED if status.state == "rejected" else NOT_STARTED
            raise BackendError(template.format(task=task, image=image,
                                               node=self._node_name(status.node),
                                               message=status.message or status.state))
        return KILLED if status.exit_code is None else status.exit_code

    def _check_pending(self, handle: str, status: _Status) -> None:
        """Raise BackendError once the task has been pending for ``pending_seconds``."""
        if self._pending_expired(handle, status):
            labels = self._service_labels(handle)
            raise BackendError(STILL_PENDING.format(
                task=labels.get(LABEL_TASK, handle[:12]), seconds=self.pending_seconds,
                message=status.message or "pending", pool=labels.get(LABEL_POOL, DEFAULT_POOL),
                label=POOL_LABEL))

    def _pending_expired(self, handle: str, status: _Status) -> bool:
        """Pending for ``pending_seconds``, counted from the task's creation as the
        engine recorded it, so a run adopted by another replica (or process) does not
        start the wait over; a clock ahead of the engine's counts from first sight."""
        now = time.monotonic()
        with self._lock:
            if status.state != "pending":
                self._pending_since.pop(handle, None)
                return False
            if handle not in self._pending_since:
                age = 0.0 if status.created is None else time.time() - status.created
                self._pending_since[handle] = now - min(max(age, 0.0), self.pending_seconds)
            since = self._pending_since[handle]
        return now - since >= self.pending_seconds

    def _close_when_final(self, handle: str, response: Any, done: threading.Event,
                          closed: threading.Event) -> None:
        """Close a followed log stream once the task ended (or can never start): at
        once when wait() saw it end, else by asking the engine now and then."""
        ended = self._ended_event(handle)
        while not done.is_set():
            if ended.wait(self.poll_seconds * 5):
                break  # wait() saw the end
            if done.is_set():
                return
            try:
                status = self._status(handle)
            except BackendError:
                continue  # the engine did not answer this time: ask again
            if status is None or status.final or self._pending_expired(handle, status):
                break
        if done.is_set():
            return
        closed.set()
        raw = self.client.api._get_raw_response_socket(response)
        sock = getattr(raw, "_sock", raw)  # a unix socket's file object wraps the socket
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns: the stream ends
        except OSError:
            pass  # closed already

    def _call(self, action: str, call: Callable[[], _T]) -> _T:
        """``call()``, retried while the engine is away (the docker backend's budget)."""
        return self._docker._retrying(action, call)

    def _create(self, spec: TaskSpec, labels: dict[str, str]) -> str:
        """Create the attempt's service once: its name comes from the attempt, so a
        create retried after a lost answer finds the service the first one made."""
        key = "/".join((self.owner, spec.run_id, spec.task_id, str(spec.attempt)))
        name = f"flowbot-{hashlib.sha256(key.encode()).hexdigest()[:24]}"
        api = self.client.api
        try:
            created = self._call(f"creating the service for task {spec.task_id}",
                                 lambda: api.create_service(
                                     self._task_template(spec, labels), name=name,
                                     labels=labels, mode=ServiceMode("replicated", 1)))
        except BackendError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, docker.errors.APIError) and cause.status_code == 409):
                raise
            created = self._call("inspecting a service", lambda: api.inspect_service(name))
            if (created["Spec"].get("Labels") or {}).get(LABEL_OWNER) != self.owner:
                raise
        return str(created["ID"])

    def _ended_event(self, handle: str) -> threading.Event:
        with self._lock:
            return self._ended.setdefault(handle, threading.Event())

    def _remove_service(self, handle: str) -> None:
        """Remove the service, then wait until its tasks and container are gone."""
        api = self.client.api
        try:
            tasks = self._call("listing a service's tasks",
                               lambda: api.tasks(filters={"service": handle}))
            task_ids = [str(t["ID"]) for t in tasks]
            self._call("removing a service", lambda: api.remove_service(handle))
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return  # already gone
            raise
        deadline = time.monotonic() + self.removal_seconds
        while not self._call("looking for a removed service's container",
                             lambda: self._all_gone(handle, task_ids)):
            if time.monotonic() >= deadline:
                log.warning(LINGERING.format(handle=handle[:12], seconds=self.removal_seconds))
                return
            time.sleep(self.poll_seconds)

    def _all_gone(self, handle: str, task_ids: list[str]) -> bool:
        api = self.client.api
        for task_id in task_ids:
            try:
                api.inspect_task(task_id)
                return False  # its node has not removed the container yet
            except docker.errors.NotFound:
                pass
        return not api.containers(all=True, filters={"label": f"{SERVICE_ID_LABEL}={handle}"})

    def _service_spec(self, handle: str) -> dict[str, Any]:
        try:
            with engine_errors("inspecting a service"):
                return dict(self.client.api.inspect_service(handle)["Spec"])
        except BackendError:
            return {}  # removed meanwhile: the error names the handle instead

    def _service_labels(self, handle: str) -> dict[str, str]:
        return dict(self._service_spec(handle).get("Labels") or {})

    def _image_and_task(self, handle: str) -> tuple[str, str]:
        spec = self._service_spec(handle)
        container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        task = (spec.get("Labels") or {}).get(LABEL_TASK, handle[:12])
        return str(container.get("Image", "?")), str(task)

    def _node_name(self, node_id: str) -> str:
        if not node_id:
            return "(none)"
        with self._lock:
            if node_id in self._nodes:
                return self._nodes[node_id]
        try:
            with engine_errors("inspecting a node"):
                name = str(self.client.api.inspect_node(node_id)["Description"]["Hostname"])
        except BackendError:
            return node_id[:12]
        with self._lock:
            self._nodes[node_id] = name
        return name

    def __repr__(self) -> str:
        return f"SwarmBackend(owner={self.owner!r})"
