"""The flow model: typed, immutable views of a validated flow file.

``schemas/flow.schema.json`` defines the syntax; :mod:`runner.validation.validate` checks a
file against it and the semantic rules. The functions here turn data that has
already passed validation into these dataclasses, filling in defaults. They are
pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any, TypeVar

DEFAULT_POOL = "default"  # the pool of a task when neither it nor its flow names one

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@lru_cache(maxsize=1024)  # flows repeat a few durations ("10m", "5s") many times
def parse_duration(text: str) -> float | None:
    """Seconds in a duration such as ``90s``, ``10m`` or ``1h30m``; None if malformed."""
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


class InputType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    FILE = "file"  # a file mounted read-only at /inputs/<name>; the value is its path


class ConcurrencyPolicy(StrEnum):
    QUEUE = "queue"
    SKIP = "skip"
    CANCEL = "cancel"


class CatchUp(StrEnum):
    NONE = "none"
    LATEST = "latest"
    ALL = "all"


class PullPolicy(StrEnum):
    IF_NOT_PRESENT = "if-not-present"
    ALWAYS = "always"
    NEVER = "never"


def repo_path_problem(value: str) -> str | None:
    """Why ``value`` (a leading ``@`` allowed) is not a relative path inside a
    repository, or None. Links inside the repository are checked when the file is read."""
    text = value[1:] if value.startswith("@") else value
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or "\\" in text or ".." in parts or "\0" in text:
        return "not a relative path inside the repository (no .., not absolute)"
    return None


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: InputType
    required: bool = False
    default: Any = None
    description: str = ""
    pattern: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Retry:
    limit: int = 0
    delay: float = 0.0
    backoff: float = 1.0

    def delay_before(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 = first retry)."""
        return self.delay * self.backoff ** (retry_number - 1)


@dataclass(frozen=True)
class Resources:
    cpus: float | None = None
    memory: str | None = None


@dataclass(frozen=True)
class Task:
    id: str
    image: str
    commands: tuple[str, ...] = ()
    script: str | None = None
    shell: str = "sh"
    env: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    timeout: float | None = None
    retry: Retry = Retry()
    resources: Resources = Resources()
    network: str = "bridge"
    pull: PullPolicy = PullPolicy.IF_NOT_PRESENT
    workdir: str = "/workspace"
    description: str = ""
    pool: str = DEFAULT_POOL  # the task's own ``pool:``, else the flow's, else "default"

    @property
    def source(self) -> str:
        """The shell text the task runs: its script, or its commands one per line."""
        return self.script if self.script is not None else "\n".join(self.commands)


@dataclass(frozen=True)
class ScheduleTrigger:
    id: str
    cron: str
    timezone: str = "UTC"
    inputs: dict[str, Any] = field(default_factory=dict)
    catchup: CatchUp = CatchUp.LATEST
    catchup_limit: int = 10
    enabled: bool = True


@dataclass(frozen=True)
class Concurrency:
    limit: int
    policy: ConcurrencyPolicy = ConcurrencyPolicy.QUEUE


@dataclass(frozen=True)
class Notify:
    status: bool = True
    issue_on_failure: bool = True


@dataclass(frozen=True)
class Flow:
    id: str
    tasks: tuple[Task, ...]
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    triggers: tuple[ScheduleTrigger, ...] = ()
    concurrency: Concurrency | None = None
    timeout: float | None = None
    errors: tuple[Task, ...] = ()
    notify: Notify = Notify()
    pool: str = DEFAULT_POOL  # the flow-level ``pool:``, the default of its tasks
    path: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def digest(self) -> str:
        """A stable hash of the flow's definition, to tell changed flows from unchanged."""
        canonical = json.dumps(self.data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def task(self, task_id: str) -> Task:
        for task in (*self.tasks, *self.errors):
            if task.id == task_id:
                return task
        raise KeyError(task_id)


_T = TypeVar("_T")


def _made(cls: type[_T], **values: Any) -> _T:
    """``cls(**values)`` for a frozen dataclass given every one of its fields, without
    the ``object.__setattr__`` per field of the generated ``__init__`` (~5 of a task's
    ~8 us to build; every validated file builds its flow). Tests hold the result
    equal to the constructor's and check that no field is left out."""
    made = object.__new__(cls)
    made.__dict__.update(values)
    return made


def _duration(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


# The small immutable parts are shared: flows repeat the same few retry policies,
# most tasks set no resources, and a repository's many flows need not each carry
# copies (fewer objects to build, and to hold).
_NO_RETRY = Retry()
_NO_RESOURCES = Resources()
_PULL = {policy.value: policy for policy in PullPolicy}
_INPUT_TYPES = {kind.value: kind for kind in InputType}
_CATCHUP = {policy.value: policy for policy in CatchUp}
_CONCURRENCY = {policy.value: policy for policy in ConcurrencyPolicy}


@lru_cache(maxsize=256)
def _retry_of(limit: int, delay: str | None, backoff: float) -> Retry:
    return Retry(limit=limit, delay=_duration(delay) or 0.0, backoff=float(backoff))


def _retry(value: Any) -> Retry:
    if value is None:
        return _NO_RETRY
    if isinstance(value, int):
        return _retry_of(value, None, 1.0)
    return _retry_of(value["limit"], value.get("delay"), value.get("backoff", 1.0))


def _resources(value: dict[str, Any] | None) -> Resources:
    if not value:
        return _NO_RESOURCES
    return Resources(cpus=value.get("cpus"), memory=value.get("memory"))


def task_from_data(data: dict[str, Any], pool: str = DEFAULT_POOL) -> Task:
    """Build a :class:`Task`; ``pool`` is the flow's, used when the task names none."""
    get = data.get
    commands, env, needs = get("commands"), get("env"), get("needs")
    return _made(
        Task,
        id=data["id"],
        image=data["image"],
        commands=tuple(commands) if commands else (),
        script=get("script"),
        shell=get("shell", "sh"),
        env=dict(env) if env else {},
        needs=tuple(needs) if needs else (),
        timeout=_duration(get("timeout")),
        retry=_retry(get("retries")),
        resources=_resources(get("resources")),
        network=get("network", "bridge"),
        pull=_PULL[get("pull", "if-not-present")],
        workdir=get("workdir", "/workspace"),
        description=get("description", ""),
        pool=get("pool", pool),
    )


def _input(name: str, data: dict[str, Any]) -> InputSpec:
    return _made(
        InputSpec,
        name=name,
        type=_INPUT_TYPES[data["type"]],
        required=bool(data.get("required", False)),
        default=data.get("default"),
        description=data.get("description", ""),
        pattern=data.get("pattern"),
        choices=tuple(data.get("choices") or ()),
    )


def _trigger(data: dict[str, Any]) -> ScheduleTrigger:
    return _made(
        ScheduleTrigger,
        id=data.get("id", "schedule"),
        cron=data["cron"],
        timezone=data.get("timezone", "UTC"),
        inputs=dict(data.get("inputs") or {}),
        catchup=_CATCHUP[data.get("catchup", "latest")],
        catchup_limit=int(data.get("catchup_limit", 10)),
        enabled=bool(data.get("enabled", True)),
    )


def flow_from_data(data: dict[str, Any], path: str = "") -> Flow:
    """Build a :class:`Flow` from data that passed :mod:`runner.validation.validate`."""
    concurrency = data.get("concurrency")
    notify = data.get("notify") or {}
    pool = data.get("pool", DEFAULT_POOL)
    return _made(
        Flow,
        id=data["id"],
        tasks=tuple(task_from_data(t, pool) for t in data["tasks"]),
        description=data.get("description", ""),
        labels=dict(data.get("labels") or {}),
        inputs={name: _input(name, spec) for name, spec in (data.get("inputs") or {}).items()},
        env=dict(data.get("env") or {}),
        secrets=tuple(data.get("secrets") or ()),
        triggers=tuple(_trigger(t) for t in data.get("triggers") or ()),
        concurrency=(
            Concurrency(concurrency["limit"], _CONCURRENCY[concurrency.get("policy", "queue")])
            if concurrency
            else None
        ),
        timeout=_duration(data.get("timeout")),
        errors=tuple(task_from_data(t, pool) for t in data.get("errors") or ()),
        notify=Notify(
            status=bool(notify.get("status", True)),
            issue_on_failure=bool(notify.get("issue_on_failure", True)),
        ),
        pool=pool,
        path=path,
        data=data,
    )
