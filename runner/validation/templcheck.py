"""Static checks of ``{{ ... }}`` references in a flow (see runner.model.templates).

Each reference must resolve when the task runs: declared inputs and secrets,
outputs of tasks that have finished by then (upstream via ``needs``; any main
task from an ``errors`` task), and the known ``run``/``trigger``/``flow`` fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from runner.loading.yamlload import Path
from runner.model import templates
from runner.model.templates import Reference
from runner.validation.diagnostics import Reporter, did_you_mean

MALFORMED = 'malformed template "{{{{ {text} }}}}"; write a dotted name like {{{{ inputs.name }}}}'
UNCLOSED = '"{{{{" is never closed with "}}}}"'
UNKNOWN_ROOT = (
    '"{text}" is not a known template value; use inputs, secrets, tasks, run, trigger or flow'
)
UNKNOWN_INPUT = '"{text}": no input named "{name}" is declared under inputs{hint}'
UNKNOWN_SECRET = '"{text}": secret "{name}" is not listed under secrets{hint}'
BAD_TASK_REF = '"{text}": write task outputs as {{{{ tasks.<task-id>.outputs.<key> }}}}'
UNKNOWN_TASK = '"{text}": no task "{name}"{hint}'
NOT_UPSTREAM = (
    '"{text}": task "{name}" is not upstream of "{task}"; add "{name}" to its needs '
    "(directly or through another task) so its outputs exist when it runs"
)
SELF_OUTPUT = '"{text}": a task cannot read its own outputs'
UNKNOWN_FIELD = '"{text}": {root} has no field "{name}"; known: {known}'
ERRORS_ONLY = '"{text}" is only set in errors tasks (when the run has failed)'
FLOW_LEVEL_OUTPUT = '"{text}": task outputs can only be used inside tasks, not in flow-level env'
IMAGE_ONLY_INPUTS = '"{text}": only {{{{ inputs.<name> }}}} may be used in image'

_FIELDS = {
    "run": templates.RUN_FIELDS,
    "trigger": templates.TRIGGER_FIELDS,
    "flow": templates.FLOW_FIELDS,
}
_ERRORS_ONLY = {("run", "failed_task"), ("run", "error")}
_TASK_FIELDS = ("commands", "script", "env", "image", "workdir", "shell")


class Names(Protocol):
    """Names a template may use: ``in`` answers in O(1); iterating (for "did you
    mean" hints) happens only when something is wrong."""

    def __contains__(self, name: object, /) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...


@dataclass
class Scope:
    """What a string may reference: the names visible where it is rendered."""

    inputs: Names
    secrets: Names
    tasks: Names  # the task ids that exist (for errors tasks: with upstream errors tasks)
    upstream: Names = field(default_factory=frozenset)
    task: str | None = None  # the task the string belongs to
    in_errors: bool = False
    image: bool = False


def strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string inside ``value`` (recursively) with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if type(item) is str:  # flat env maps: no generator per value
                yield (*path, key), item
            else:
                yield from strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if type(item) is str:  # command lists
                yield (*path, index), item
            else:
                yield from strings(item, (*path, index))


def check_task(task: dict[str, Any], path: Path, scope: Scope, report: Reporter) -> None:
    """Check every template in the rendered fields of one task."""
    for name in _TASK_FIELDS:
        value = task.get(name)
        if value is None:
            continue
        scope.image = name == "image"
        kind = type(value)
        if kind is str:  # the common shapes without walking: a string,
            if "{{" in value:
                check_string(value, (*path, name), scope, report)
        elif kind is list and all(type(item) is str for item in value):  # a command list,
            for index, item in enumerate(value):
                if "{{" in item:
                    check_string(item, (*path, name, index), scope, report)
        elif kind is dict and all(type(item) is str for item in value.values()):  # an env map
            for key, item in value.items():
                if "{{" in item:
                    check_string(item, (*path, name, key), scope, report)
        else:
            for where, text in strings(value, (*path, name)):
                check_string(text, where, scope, report)
    scope.image = False


def check_string(text: str, path: Path, scope: Scope, report: Reporter) -> None:
    if "{{" not in text:
        return  # the common case: nothing to resolve
    refs, unclosed = _scanned(text) if len(text) <= _CACHED_LENGTH else _scan(text)
    for ref in refs:
        message = _problem(ref, scope)
        if message is not None:
            report.at(path, message, offset=ref.start)
    if unclosed:
        report.at(path, UNCLOSED.format(), offset=_unclosed_offset(text))


# Template strings that repeat are short; a long one cached would be kept alive
# by the cache (4,096 strings of up to 1 MiB each), long after its file was checked.
_CACHED_LENGTH = 512


@lru_cache(maxsize=4096)
def _scanned(text: str) -> tuple[tuple[Reference, ...], bool]:
    """The references in ``text`` and whether a "{{" is left open; cached, because
    a repository's flows repeat the same few template strings many times."""
    return _scan(text)


def _scan(text: str) -> tuple[tuple[Reference, ...], bool]:
    return tuple(templates.scan(text)), templates.has_unclosed(text)


def _unclosed_offset(text: str) -> int:
    offset = text.rfind("{{")
    for ref in templates.scan(text):
        if ref.start <= offset < ref.end:
            return ref.start
    return offset


def _problem(ref: Reference, scope: Scope) -> str | None:
    if _plainly_fine(ref.path, scope):
        return None
    if not ref.valid_syntax:
        return MALFORMED.format(text=ref.text)
    root, rest, text = ref.path[0], ref.path[1:], "{{ " + ref.text + " }}"
    if scope.image and root != "inputs":
        return IMAGE_ONLY_INPUTS.format(text=text)
    if root == "inputs":
        return _named(text, rest, scope.inputs, UNKNOWN_INPUT)
    if root == "secrets":
        return _named(text, rest, scope.secrets, UNKNOWN_SECRET)
    if root == "tasks":
        return _task_output(text, rest, scope)
    if root in _FIELDS:
        known = _FIELDS[root]
        if len(rest) != 1 or rest[0] not in known:
            name = ".".join(rest)
            return UNKNOWN_FIELD.format(text=text, root=root, name=name, known=", ".join(known))
        if (root, rest[0]) in _ERRORS_ONLY and not scope.in_errors:
            return ERRORS_ONLY.format(text=text)
        return None
    return UNKNOWN_ROOT.format(text=text)


def _plainly_fine(path: tuple[str, ...], scope: Scope) -> bool:
    """The references flows are full of, answered without building any message text:
    a declared input or secret, an upstream task's output, a known run field. Anything
    else goes through :func:`_problem`'s full checks."""
    size = len(path)
    if size < 2:
        return False
    root = path[0]
    if root == "inputs":
        return size == 2 and path[1] in scope.inputs
    if scope.image:
        return False
    if root == "secrets":
        return size == 2 and path[1] in scope.secrets
    if root == "tasks":
        name = path[1]
        return (size == 4 and path[2] == "outputs" and scope.task is not None
                and name in scope.tasks and name != scope.task
                and (scope.in_errors or name in scope.upstream))
    known = _FIELDS.get(root)
    return (known is not None and size == 2 and path[1] in known
            and (scope.in_errors or (root, path[1]) not in _ERRORS_ONLY))


def _named(text: str, rest: tuple[str, ...], names: Names, template: str) -> str | None:
    name = ".".join(rest)
    if len(rest) == 1 and name in names:
        return None
    return template.format(text=text, name=name, hint=did_you_mean(name, names))


def _task_output(text: str, rest: tuple[str, ...], scope: Scope) -> str | None:
    if len(rest) != 3 or rest[1] != "outputs":
        return BAD_TASK_REF.format(text=text)
    name = rest[0]
    if scope.task is None:
        return FLOW_LEVEL_OUTPUT.format(text=text)
    if name not in scope.tasks:
        return UNKNOWN_TASK.format(text=text, name=name, hint=did_you_mean(name, scope.tasks))
    if scope.in_errors:
        return None
    if name == scope.task:
        return SELF_OUTPUT.format(text=text)
    if name not in scope.upstream:
        return NOT_UPSTREAM.format(text=text, name=name, task=scope.task)
    return None
