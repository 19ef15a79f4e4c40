"""Whether a backend can honour a flow, decided before the flow runs.

A flow that asks for ``network: none`` on a backend whose tasks always have a
network, for a pool the backend cannot place, or (where the backend applies them)
for more CPUs or memory than the operator's bounds, is refused with the reason —
at pull-request time (:mod:`runner.validation.capability_check` places each
problem at the field that asks for it) and again at run admission
(:func:`refusal`, as :meth:`~runner.backends.limits.TaskLimits.refusal` for the
operator's bounds) — instead of running with weaker isolation or waiting for a
node that never comes.

Pure: it reads the flow model, a backend's :class:`Capabilities` (a static
answer, no engine needed) and the bounds, so it also runs in the forked
validation child. What is over the bounds is decided by
:meth:`~runner.backends.limits.TaskBounds.excesses`, the rule admission applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runner.backends import capabilities_of
from runner.backends.base import DEFAULT_POOL, Backend, Capabilities
from runner.backends.limits import TaskBounds, TaskLimits
from runner.model.flows import Flow, Task

NO_NETWORK_NONE = (
    '"none" cannot be honoured by the {backend} backend: {why}; '
    "remove it, or run flowbot with FLOWBOT_BACKEND=docker"
)
# Why a backend's tasks always have a network, for the backends flowbot ships.
WHY_NETWORK = {
    "process": "tasks run as host processes, on flowbot's own network",
    "swarm": "swarm services always get a network",
}
SOME_NETWORK = "its tasks always get a network"
ONLY_POOLS = (
    '"{pool}" cannot be placed by the {backend} backend, which runs only the {pools} '
    "pool{s}; remove pool: (or set it to {default}), or run flowbot with "
    "FLOWBOT_BACKEND=swarm on nodes labelled flowbot.pool={pool}"
)
NO_LIMITS = (
    "not enforced by the {backend} backend (tasks run without CPU or memory limits); "
    "the task runs anyway"
)
ASKS = "asks for {asked}, {above}"
REFUSED = "{path}: {where}: {message}"

Where = tuple[str | int, ...]  # a data path: ("tasks", 0, "network")


@dataclass(frozen=True)
class Target:
    """The backend flows are checked against: its name (for messages), what it can
    honour and the operator's bounds on what a task may ask for (None: not checked).
    Plain data, so it crosses into the forked validation child as is."""

    backend: str
    capabilities: Capabilities
    bounds: TaskBounds | None = None

    @classmethod
    def of(cls, backend: Backend) -> Target:
        """What ``backend`` can honour (admission checks the bounds itself)."""
        return cls(backend.name, backend.capabilities())

    @classmethod
    def named(cls, name: str, limits: Callable[[], TaskLimits] | None = None) -> Target:
        """The backend called ``name`` (``FLOWBOT_BACKEND``), without building it or
        reaching its engine. Raises ConfigError for an unknown name. ``limits`` (e.g.
        ``settings.task_limits``) gives the operator's bounds; it is called only for a
        backend that enforces them (docker and swarm, as the runtime applies them; the
        process backend runs tasks unbounded), so its ConfigError comes only there."""
        capabilities = capabilities_of(name)
        if limits is None or not capabilities.resource_limits:
            return cls(name, capabilities)  # no bounds to check
        return cls(name, capabilities, limits().bounds())


@dataclass(frozen=True)
class Mismatch:
    """One thing ``flow`` asks for that the backend cannot give, at data path ``where``."""

    where: Where
    message: str
    warning: bool = False  # the flow still runs, without what it asked for


def mismatches(flow: Flow, target: Target) -> list[Mismatch]:
    """Everything in ``flow`` the target backend cannot honour, in file order."""
    found: list[Mismatch] = []
    if not _pool_ok(flow.pool, target):
        found.append(Mismatch(("pool",), _pool_message(flow.pool, target)))
    for where, task in _tasks(flow):
        found.extend(_task_mismatches(flow, where, task, target))
    return found


def refusal(flow: Flow, target: Target) -> str | None:
    """None if ``target`` can run ``flow``, else why not (for run admission)."""
    for mismatch in mismatches(flow, target):
        if not mismatch.warning:
            return REFUSED.format(path=flow.path or f"flow {flow.id}",
                                  where=_dotted(mismatch.where), message=mismatch.message)
    return None


def backend_refusal(flow: Flow, backend: Backend) -> str | None:
    """:func:`refusal` against a backend object (what :class:`RunService` holds)."""
    return refusal(flow, Target.of(backend))


def _task_mismatches(flow: Flow, where: Where, task: Task,
                     target: Target) -> list[Mismatch]:
    caps = target.capabilities
    found = []
    if task.network == "none" and not caps.network_none:
        why = WHY_NETWORK.get(target.backend, SOME_NETWORK)
        found.append(Mismatch((*where, "network"),
                              NO_NETWORK_NONE.format(backend=target.backend, why=why)))
    own_pool = (*where, "pool")
    if not _pool_ok(task.pool, target) and _own_pool(flow, own_pool, task):
        found.append(Mismatch(own_pool, _pool_message(task.pool, target)))
    resources = task.resources.cpus is not None or task.resources.memory is not None
    if resources and not caps.resource_limits:
        found.append(Mismatch((*where, "resources"), NO_LIMITS.format(backend=target.backend),
                              warning=True))
    found.extend(_over_bounds(where, task, target))
    return found


def _over_bounds(where: Where, task: Task, target: Target) -> list[Mismatch]:
    """Each resource ``task`` asks for above the operator's bounds, at its field (an
    error: admission refuses every run of such a flow)."""
    if target.bounds is None:
        return []  # the backend applies none, or they are not known here
    excesses = target.bounds.excesses(task.resources.cpus, task.resources.memory)
    return [Mismatch((*where, "resources", excess.field),
                     ASKS.format(asked=excess.asked, above=excess.above()))
            for excess in excesses]


def _tasks(flow: Flow) -> list[tuple[Where, Task]]:
    return [*((("tasks", i), task) for i, task in enumerate(flow.tasks)),
            *((("errors", i), task) for i, task in enumerate(flow.errors))]


def _pool_ok(pool: str, target: Target) -> bool:
    return target.capabilities.accepts_pool(pool)


def _pool_message(pool: str, target: Target) -> str:
    pools = sorted(target.capabilities.pools or ())
    return ONLY_POOLS.format(pool=pool, backend=target.backend, default=DEFAULT_POOL,
                             pools=", ".join(f'"{p}"' for p in pools), s="s" * (len(pools) > 1))


def _own_pool(flow: Flow, where: Where, task: Task) -> bool:
    """Whether the task names its pool itself; one inherited from the flow's ``pool:`` is
    reported once, there. (A flow built without its data: when it differs.)"""
    if not flow.data:
        return task.pool != flow.pool
    node: object = flow.data
    for part in where:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def _dotted(where: Where) -> str:
    """``("tasks", 1, "pool")`` -> ``tasks[1].pool``, as validation names fields."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")
