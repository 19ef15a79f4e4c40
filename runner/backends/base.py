"""The seam between the run engine and where tasks execute.

The engine only speaks this interface; the Docker backend is the default, the
process backend serves machines without Docker, and a distributed backend
(Swarm services, Kubernetes Jobs) can be added by implementing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runner.model.flows import DEFAULT_POOL as DEFAULT_POOL  # backends name it from here
from runner.model.flows import PullPolicy

# Labels every container carries, so the engine can find, reap and report them.
LABEL_RUN = "dev.flowbot.run"
LABEL_TASK = "dev.flowbot.task"
LABEL_ATTEMPT = "dev.flowbot.attempt"
LABEL_OWNER = "dev.flowbot.owner"  # which flowbot data dir owns it

UNPLACEABLE = (
    'cannot start task {task}: the {backend} backend cannot place pool "{pool}" '
    "(it runs only: {pools}); remove pool: from the flow, or run flowbot with FLOWBOT_BACKEND=swarm"
)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can honour, known without reaching its engine.

    A class-level answer (pull-request validation runs where no engine is), so
    validation can refuse a flow the configured backend would run with weaker
    isolation or could not place, instead of running it anyway.
    """

    network_none: bool  # ``network: none`` gives the task no network at all
    pids_limit: bool  # the operator's pids limit (FLOWBOT_TASK_PIDS) is enforced
    no_new_privileges: bool  # setuid binaries cannot raise a task's privileges
    read_only_root: bool  # the root filesystem can be made read-only
    resource_limits: bool  # ``resources.cpus`` / ``resources.memory`` are enforced
    # The pools a task may name: None means any pool (placed by node label),
    # else exactly these (``frozenset({"default"})`` for a single host).
    pools: frozenset[str] | None = frozenset({DEFAULT_POOL})

    def accepts_pool(self, pool: str) -> bool:
        """Whether a task with ``pool: <pool>`` can be placed by this backend."""
        return self.pools is None or pool in self.pools

    def unplaceable(self, spec: TaskSpec, backend: str) -> str | None:
        """Why ``backend`` cannot start ``spec`` in its pool, or None when it can."""
        if self.accepts_pool(spec.pool):
            return None
        pools = ", ".join(sorted(self.pools or ()))
        return UNPLACEABLE.format(task=spec.task_id, backend=backend, pool=spec.pool,
                                  pools=pools)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a backend needs to start one attempt of one task."""

    run_id: str
    task_id: str
    attempt: int
    image: str
    argv: tuple[str, ...]  # e.g. ("sh", "-ec", "<rendered script>")
    env: dict[str, str]  # secrets included; never logged
    workspace: Path  # host dir holding this run's copy of the repository
    workdir: str  # where the workspace appears to the task (container path)
    output_file: Path  # host file the task appends key=value lines to ($FLOWBOT_OUTPUT)
    network: str = "bridge"  # "none" | "bridge"
    cpus: float | None = None
    memory: str | None = None  # docker style: "256m", "1g"
    pull: PullPolicy = PullPolicy.IF_NOT_PRESENT
    labels: dict[str, str] = field(default_factory=dict)
    inputs: Path | None = None  # host dir of the run's file inputs, mounted read-only
    pool: str = DEFAULT_POOL  # the worker pool the task must run in (``pool:``)


@dataclass(frozen=True)
class Existing:
    """A task execution the backend still knows about (for restart reconciliation)."""

    handle: str
    run_id: str
    task_id: str
    attempt: int
    running: bool
    exit_code: int | None


class Backend(Protocol):
    """Runs task attempts. Implementations must be safe to call from several threads."""

    name: str
    # Where ``TaskSpec.inputs`` appears to the task (``/inputs``), or None when the
    # task sees host paths (the process backend): file inputs' values follow it.
    inputs_mount: str | None

    def capabilities(self) -> Capabilities:
        """What this backend can honour. Implemented as a classmethod: the answer
        must not need the engine (pull-request validation runs without one)."""

    def prepare(self, spec: TaskSpec) -> None:
        """Make the image available following ``spec.pull``; raise BackendError with a
        message a user can act on (image missing with pull: never, pull failed)."""

    def start(self, spec: TaskSpec) -> str:
        """Start the attempt and return its handle (container id, pid...)."""

    def logs(self, handle: str) -> Iterator[bytes]:
        """Yield output chunks (stdout and stderr interleaved) until the task exits."""

    def wait(self, handle: str, timeout: float | None) -> int | None:
        """Block until exit and return the exit code, or None if ``timeout`` passed first."""

    def kill(self, handle: str) -> None:
        """Stop the attempt now (timeout, cancel). No error if it already ended."""

    def remove(self, handle: str) -> None:
        """Release everything the attempt holds. No error if already gone."""

    def existing(self, owner: str) -> list[Existing]:
        """Attempts labelled with ``owner`` that still exist, running or exited."""
