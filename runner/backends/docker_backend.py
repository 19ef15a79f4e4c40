"""The default backend: each task attempt is one container on a Docker engine.

Containers get safe defaults: never privileged, ``no-new-privileges``, every
capability dropped, no Docker socket, a pids limit, the task's cpus/memory and
``network: none`` honoured, and the flowbot labels so the engine can find them
after a restart. Only two host paths are mounted: the run's workspace
(read-write, at the task's workdir) and the attempt's output file (at
``/flowbot/<name>``, as ``$FLOWBOT_OUTPUT``). The single file rather than its
directory is mounted so a task cannot touch other tasks' outputs.

The task runs as the host user's uid:gid (not the image's user), so it can
write the workspace and output file the runner created, and whatever it writes
stays owned by, and removable by, the runner. The workspace paths must be on
the engine's own filesystem (a local engine, or a remote one sharing the dir).

``spec.argv[0]`` replaces the image's entrypoint, so ``sh -ec <script>`` runs as
written whatever entrypoint the image declares.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from runner.backends.base import (
    LABEL_ATTEMPT,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_TASK,
    Existing,
    TaskSpec,
)
from runner.errors import BackendError
from runner.flows import PullPolicy

log = logging.getLogger(__name__)

OUTPUT_DIR = "/flowbot"
NOT_PRESENT = (
    "image {image} is not present and pull: never is set; build or pull it on the runner host"
)
PULL_FAILED = "cannot pull image {image}: {reason}"
UNREACHABLE = "cannot reach the Docker engine at {where}: {reason} — is dockerd running?"
NO_WORKSPACE = "the run's workspace {path} is missing; was the data dir cleaned?"
ENGINE_FAILED = "the Docker engine failed while {action}: {reason}"


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


def _gone(exc: BackendError) -> bool:
    """The error says the object no longer exists or no longer runs."""
    cause = exc.__cause__
    if isinstance(cause, docker.errors.NotFound):
        return True
    return isinstance(cause, docker.errors.APIError) and cause.status_code == 409


class DockerBackend:
    """Runs each task attempt as a container (see the module docstring)."""

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        owner: str = "default",
        pids_limit: int = 512,
    ) -> None:
        self.owner = owner
        self.pids_limit = pids_limit
        self._client = client
        self._lock = threading.Lock()

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
        # Docker would silently create a missing bind source as a root-owned directory.
        if not spec.workspace.is_dir():
            raise BackendError(NO_WORKSPACE.format(path=spec.workspace))
        if not spec.output_file.is_file():
            spec.output_file.parent.mkdir(parents=True, exist_ok=True)
            spec.output_file.touch()
        container = self._create(spec)
        try:
            with engine_errors(f"starting the container for task {spec.task_id}"):
                container.start()
        except BackendError:
            self.remove(str(container.id))
            raise
        log.info("started container %s", container.short_id, extra=_context(spec))
        return str(container.id)

    def logs(self, handle: str) -> Iterator[bytes]:
        container = self._container(handle)
        if container is None:
            return  # already removed: nothing more to say
        with engine_errors("reading logs"):
            stream = container.logs(stdout=True, stderr=True, stream=True, follow=True)
            try:
                yield from stream
            finally:
                stream.close()  # also when the caller stops reading early

    def wait(self, handle: str, timeout: float | None) -> int | None:
        container = self._container(handle)
        if container is None:
            raise BackendError(f"container {handle[:12]} is gone; its exit code is lost")
        if timeout is not None and timeout <= 0:
            return self._exit_code_now(container)  # requests rejects a zero timeout
        try:
            with engine_errors("waiting for a container"):
                result = container.wait(timeout=timeout)
        except BackendError as exc:
            if timeout is not None and _is_timeout(exc.__cause__):
                return None  # the task is still running
            raise
        return int(result["StatusCode"])

    def kill(self, handle: str) -> None:
        container = self._container(handle)
        if container is None:
            return  # already gone
        try:
            with engine_errors(f"killing container {handle[:12]}"):
                container.kill()
        except BackendError as exc:
            if _gone(exc):
                return  # removed meanwhile, or not running any more
            raise

    def remove(self, handle: str) -> None:
        try:
            with engine_errors("removing a container"):
                self.client.api.remove_container(handle, force=True, v=True)
        except BackendError as exc:
            if _gone(exc):
                return  # already gone, or its removal is in progress
            raise

    def existing(self, owner: str) -> list[Existing]:
        with engine_errors("listing containers"):
            found = self.client.containers.list(
                all=True, filters={"label": f"{LABEL_OWNER}={owner}"}
            )
        return [_existing(container) for container in found]

    def _present(self, image: str) -> bool:
        try:
            with engine_errors(f"looking up image {image}"):
                self.client.images.get(image)
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.ImageNotFound):
                return False
            raise
        return True

    def _pull(self, image: str) -> None:
        repository, tag = parse_repository_tag(image)
        client = self.client
        try:
            with engine_errors(f"pulling {image}"):
                client.images.pull(repository, tag=tag or "latest")
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, docker.errors.APIError):
                reason = cause.explanation or str(cause)
                raise BackendError(PULL_FAILED.format(image=image, reason=reason)) from cause
            raise
        log.info("pulled %s", image, extra={"image": image})

    def _create(self, spec: TaskSpec) -> Container:
        output = f"{OUTPUT_DIR}/{spec.output_file.name}"
        with engine_errors(f"creating the container for task {spec.task_id}"):
            return self.client.containers.create(
                spec.image,
                entrypoint=list(spec.argv[:1]),
                command=list(spec.argv[1:]),
                environment={**spec.env, "FLOWBOT_OUTPUT": output},
                working_dir=spec.workdir,
                user=f"{os.getuid()}:{os.getgid()}",
                labels=self._labels(spec),
                detach=True,
                **self._host_config(spec, output),
            )

    def _host_config(self, spec: TaskSpec, output: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "privileged": False,
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "pids_limit": self.pids_limit,
            "network_mode": spec.network,
            "auto_remove": False,
            "volumes": {
                str(spec.workspace.resolve()): {"bind": spec.workdir, "mode": "rw"},
                str(spec.output_file.resolve()): {"bind": output, "mode": "rw"},
            },
        }
        if spec.cpus is not None:
            config["nano_cpus"] = int(spec.cpus * 1_000_000_000)
        if spec.memory is not None:
            config["mem_limit"] = spec.memory
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
            with engine_errors("looking up a container"):
                return self.client.containers.get(handle)
        except BackendError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise

    def _exit_code_now(self, container: Container) -> int | None:
        with engine_errors("inspecting a container"):
            container.reload()
        state = container.attrs["State"]
        return None if state.get("Running") else int(state["ExitCode"])

    def __repr__(self) -> str:
        return f"DockerBackend(owner={self.owner!r}, engine={engine_location()!r})"


def _is_timeout(exc: BaseException | None) -> bool:
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc)


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
