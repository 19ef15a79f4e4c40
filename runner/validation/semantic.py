"""Semantic checks of a schema-valid flow: what JSON Schema cannot express.

Task ids, the ``needs`` graph (existence, cycles), template references,
durations, image references and memory sizes here; inputs and triggers in
:mod:`runner.validation.semantic_inputs`. Everything reports through a
:class:`~runner.validation.diagnostics.Reporter`; nothing here raises for bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from runner.loading.yamlload import Path
from runner.model import imageref
from runner.model.flows import parse_duration
from runner.validation import semantic_graph, semantic_inputs, templcheck
from runner.validation.diagnostics import Reporter
from runner.validation.templcheck import Names, Scope

DUPLICATE_TASK = 'task id "{id}" is already used by {first}; task ids must be unique'
ZERO_DURATION = "{value} is zero; a timeout must be longer than 0s"


def check(data: dict[str, Any], report: Reporter, now: datetime) -> None:
    """Report every semantic problem in ``data`` (already valid against the schema)."""
    main = _ids(data.get("tasks") or [])
    errors = _ids(data.get("errors") or [])
    _check_unique_ids(data, report)
    upstream = semantic_graph.check(data, "tasks", main, errors, report)
    errors_upstream = semantic_graph.check(data, "errors", errors, main, report)
    semantic_inputs.check_inputs(data, report)
    semantic_inputs.check_triggers(data, report, now)
    _check_templates(data, report, main, upstream, errors_upstream)
    _check_durations(data, report)
    for group in ("tasks", "errors"):
        for index, task in enumerate(data.get(group) or []):
            report.tick()
            _check_task_fields(task, (group, index), report)


def _ids(tasks: list[dict[str, Any]]) -> list[str]:
    return [task["id"] for task in tasks]


def _check_unique_ids(data: dict[str, Any], report: Reporter) -> None:
    first: dict[str, str] = {}
    for group in ("tasks", "errors"):
        for index, task in enumerate(data.get(group) or []):
            where = f"{group}[{index}]"
            if task["id"] in first:
                message = DUPLICATE_TASK.format(id=task["id"], first=first[task["id"]])
                report.at((group, index, "id"), message)
            first.setdefault(task["id"], where)


def _check_templates(
    data: dict[str, Any],
    report: Reporter,
    main: list[str],
    upstream: semantic_graph.Graph,
    errors_upstream: semantic_graph.Graph,
) -> None:
    inputs = _Names(list(data.get("inputs") or {}))
    secrets = _Names(list(data.get("secrets") or []))
    flow_scope = Scope(inputs, secrets, tasks=[])
    for path, text in templcheck.strings(data.get("env"), ("env",)):
        templcheck.check_string(text, path, flow_scope, report)
    main_tasks = _Names(main)
    for index, task in enumerate(data.get("tasks") or []):
        report.tick()
        scope = Scope(inputs, secrets, main_tasks, upstream.upstream_of(task["id"]), task["id"])
        templcheck.check_task(task, ("tasks", index), scope, report)
    for index, task in enumerate(data.get("errors") or []):
        report.tick()
        visible = _Names(main, errors_upstream.upstream_of(task["id"]))
        scope = Scope(inputs, secrets, visible, frozenset(), task["id"], in_errors=True)
        templcheck.check_task(task, ("errors", index), scope, report)


class _Names:
    """Task ids a template may name: a set for ``in``, flow order for suggestions;
    plus, for an errors task, its upstream errors tasks (a view, never copied)."""

    def __init__(self, names: list[str], more: Names | None = None) -> None:
        self._names = names
        self._set = frozenset(names)
        self._more = more

    def __contains__(self, name: object) -> bool:
        return name in self._set or (self._more is not None and name in self._more)

    def __iter__(self) -> Iterator[str]:
        yield from self._names
        if self._more is not None:
            yield from self._more


def _check_durations(data: dict[str, Any], report: Reporter) -> None:
    timeouts: list[tuple[Path, Any]] = [(("timeout",), data.get("timeout"))]
    for group in ("tasks", "errors"):
        for index, task in enumerate(data.get(group) or []):
            timeouts.append(((group, index, "timeout"), task.get("timeout")))
    for path, value in timeouts:
        # Schema-valid durations are zero only when every digit is 0: skip parsing the rest.
        if isinstance(value, str) and not value.strip("0hms") and parse_duration(value) == 0:
            report.at(path, ZERO_DURATION.format(value=f'"{value}"'))


def _check_task_fields(task: dict[str, Any], path: tuple[str, int], report: Reporter) -> None:
    image = task["image"]
    if "{{" not in image:
        problem = imageref.image_problem(image)
        if problem:
            report.at((*path, "image"), problem)
    memory = (task.get("resources") or {}).get("memory")
    if memory is not None:
        problem = imageref.memory_problem(memory)
        if problem:
            report.at((*path, "resources", "memory"), problem)
