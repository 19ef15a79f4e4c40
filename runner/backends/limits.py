"""What a task container may use: the operator's defaults and bounds.

The operator sets a default memory and CPU share for every task and the most a
flow may ask for (``resources.memory`` / ``resources.cpus``); the user tasks
run as, a read-only root filesystem (with a tmpfs ``/tmp``), the pids limit and
the container log cap apply to every task and cannot be changed by a flow.

Pure: :class:`TaskLimits` is checked once when settings are read
(:meth:`TaskLimits.checked`), flows are checked at run admission
(:meth:`TaskLimits.refusal`), and the Docker backend applies
:meth:`TaskLimits.resolve` to each task. The bounds alone (:class:`TaskBounds`,
plain data) also go to validation, which reports what is over them at the field
(:mod:`runner.backends.fit`); :meth:`TaskBounds.excesses` decides for both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runner.errors import ConfigError
from runner.model.flows import Flow, Task
from runner.model.imageref import MIN_MEMORY, memory_bytes

NOBODY = "65534:65534"  # the task user when flowbot itself runs as root

ABOVE = (
    "above this flowbot's limit of {bound} ({setting}); ask for at most {bound}, "
    "or have the operator raise {setting}"
)
OVER_BOUND = "{path}: task \"{task}\" asks for resources.{field}: {asked}, {above}"
BAD_MEMORY = "expected a memory size such as 512m or 2g (at least 6m), got {value!r}"
BAD_CPUS = "expected a positive number of CPUs such as 0.5 or 2, got {value!r}"
DEFAULT_OVER_MAX = "the default {default} is above the maximum {maximum} ({setting})"
BAD_USER = "expected a numeric uid:gid such as 1000:1000, got {value!r}"
BAD_PIDS = "expected a whole number of at least 16, got {value!r}"
CANNOT_HAND_OVER = (
    "tasks cannot run as {user}: flowbot runs as uid {uid}, not root, so it cannot give them "
    "the run's workspace; leave it empty (tasks run as flowbot's own user) or run flowbot as root"
)


@dataclass(frozen=True)
class Excess:
    """One resource a task asks for above the operator's bound."""

    field: str  # "cpus" or "memory", as under a task's ``resources:``
    asked: str  # as the flow wrote it
    bound: str
    setting: str  # the variable that sets the bound

    def above(self) -> str:
        """Why it is refused and what to do (the tail of every message about it)."""
        return ABOVE.format(bound=self.bound, setting=self.setting)


@dataclass(frozen=True)
class TaskBounds:
    """The most a flow's task may ask for: plain data, so validation (also in its
    forked child) applies the same rule as run admission."""

    max_cpus: float
    max_memory: str

    def excesses(self, cpus: float | None, memory: str | None) -> list[Excess]:
        """What is above the bounds in a resource request: memory first, then CPUs."""
        found = []
        if memory is not None and _bytes(memory) > _bytes(self.max_memory):
            found.append(Excess("memory", memory, self.max_memory, _setting("max_memory")))
        if cpus is not None and cpus > self.max_cpus:
            found.append(Excess("cpus", f"{cpus:g}", f"{self.max_cpus:g}",
                                _setting("max_cpus")))
        return found


@dataclass(frozen=True)
class TaskLimits:
    """The operator's container defaults and the bounds flows must stay within."""

    memory: str = "1g"  # a task that sets no resources.memory gets this
    max_memory: str = "4g"  # the most resources.memory may ask for
    cpus: float = 1.0
    max_cpus: float = 4.0
    user: str = ""  # uid:gid; empty: flowbot's own, or 65534:65534 when flowbot is root
    read_only_root: bool = True  # /tmp (tmpfs), the workspace and $FLOWBOT_OUTPUT stay writable
    tmp_size: str = "256m"  # size of the tmpfs /tmp (counts against the task's memory)
    pids: int = 512
    log_max_size: str = "100m"  # the engine keeps at most 2 files of this size per container

    def checked(self) -> TaskLimits:
        """Self, after checking every value; raises ConfigError naming the variable."""
        for name in ("memory", "max_memory", "tmp_size", "log_max_size"):
            value = getattr(self, name)
            size = memory_bytes(value)
            if size is None or size < MIN_MEMORY:
                raise ConfigError(_setting(name), BAD_MEMORY.format(value=value))
        for name in ("cpus", "max_cpus"):
            if not getattr(self, name) > 0:
                raise ConfigError(_setting(name), BAD_CPUS.format(value=getattr(self, name)))
        if _bytes(self.memory) > _bytes(self.max_memory):
            raise ConfigError(_setting("memory"), DEFAULT_OVER_MAX.format(
                default=self.memory, maximum=self.max_memory, setting=_setting("max_memory")))
        if self.cpus > self.max_cpus:
            raise ConfigError(_setting("cpus"), DEFAULT_OVER_MAX.format(
                default=f"{self.cpus:g}", maximum=f"{self.max_cpus:g}",
                setting=_setting("max_cpus")))
        if self.user and _uid_gid(self.user) is None:
            raise ConfigError(_setting("user"), BAD_USER.format(value=self.user))
        if self.pids < 16:
            raise ConfigError(_setting("pids"), BAD_PIDS.format(value=self.pids))
        uid = os.getuid()
        wanted = _uid_gid(self.user) if self.user else None
        if wanted is not None and uid != 0 and wanted[0] != uid:
            raise ConfigError(_setting("user"), CANNOT_HAND_OVER.format(
                user=self.user, uid=uid))
        return self

    def task_user(self) -> tuple[int, int]:
        """The uid and gid tasks run as (never root unless the operator says so)."""
        given = _uid_gid(self.user) if self.user else None
        if given is not None:
            return given
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            return _uid_gid(NOBODY) or (65534, 65534)
        return uid, gid

    def refusal(self, flow: Flow) -> str | None:
        """None if every task of ``flow`` stays within the bounds, else why not."""
        for task in (*flow.tasks, *flow.errors):
            problem = self.task_problem(task, flow.path or f"flow {flow.id}")
            if problem is not None:
                return problem
        return None

    def task_problem(self, task: Task, path: str) -> str | None:
        """What is over the bounds in ``task`` (declared in file ``path``), if anything."""
        return self.request_problem(task.id, task.resources.cpus, task.resources.memory, path)

    def request_problem(self, task_id: str, cpus: float | None, memory: str | None,
                        path: str) -> str | None:
        """What is over the bounds in a task's resource request, if anything."""
        excesses = self.bounds().excesses(cpus, memory)
        if not excesses:
            return None  # within the bounds
        first = excesses[0]
        return OVER_BOUND.format(path=path, task=task_id, field=first.field,
                                 asked=first.asked, above=first.above())

    def bounds(self) -> TaskBounds:
        """The most a flow may ask for, alone (what validation checks flows against)."""
        return TaskBounds(self.max_cpus, self.max_memory)

    def resolve(self, cpus: float | None, memory: str | None) -> tuple[float, int]:
        """The CPUs and memory bytes a task gets: its request, else the defaults."""
        return (self.cpus if cpus is None else cpus,
                _bytes(self.memory if memory is None else memory))


def _setting(name: str) -> str:
    return f"FLOWBOT_TASK_{name.upper()}"


def _bytes(size: str) -> int:
    value = memory_bytes(size)
    if value is None:  # the schema and checked() let only well-formed sizes through
        raise ValueError(f"not a memory size: {size!r}")
    return value


def _uid_gid(text: str) -> tuple[int, int] | None:
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid or uid)
