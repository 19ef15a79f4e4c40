"""Semantic checks of a schema-valid flow: what JSON Schema cannot express.

Task ids, the ``needs`` graph (existence, cycles), template references,
durations, image references and memory sizes here; inputs and triggers in
:mod:`runner.semantic_inputs`. Everything reports through a
:class:`~runner.diagnostics.Reporter`; nothing here raises for bad input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runner import imageref, semantic_inputs, templcheck
from runner.diagnostics import Reporter, did_you_mean
from runner.flows import parse_duration
from runner.templcheck import Scope
from runner.yamlload import Path

DUPLICATE_TASK = 'task id "{id}" is already used by {first}; task ids must be unique'
UNKNOWN_NEED = 'needs "{name}", but there is no such task{hint}'
NEED_ERRORS_TASK = 'needs "{name}", an errors task; main tasks cannot wait for errors tasks'
NEED_MAIN_TASK = (
    'needs "{name}", a main task; errors tasks run after the run failed, '
    "so they can only need other errors tasks"
)
CYCLE = "dependency cycle: {cycle}; remove one of these needs"
ZERO_DURATION = "{value} is zero; a timeout must be longer than 0s"


def check(data: dict[str, Any], report: Reporter, now: datetime) -> None:
    """Report every semantic problem in ``data`` (already valid against the schema)."""
    main = _ids(data.get("tasks") or [])
    errors = _ids(data.get("errors") or [])
    _check_unique_ids(data, report)
    upstream = _check_graph(data, "tasks", main, errors, report)
    errors_upstream = _check_graph(data, "errors", errors, main, report)
    semantic_inputs.check_inputs(data, report)
    semantic_inputs.check_triggers(data, report, now)
    _check_templates(data, report, main, upstream, errors_upstream)
    _check_durations(data, report)
    for group in ("tasks", "errors"):
        for index, task in enumerate(data.get(group) or []):
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


def _check_graph(
    data: dict[str, Any], group: str, own: list[str], other: list[str], report: Reporter
) -> dict[str, set[str]]:
    """Check ``needs`` in one task group; return each task's transitive upstream."""
    needs: dict[str, list[str]] = {}
    for index, task in enumerate(data.get(group) or []):
        valid = []
        for at, name in enumerate(task.get("needs") or []):
            if name in own:
                valid.append(name)
                continue
            if name in other:
                template = NEED_ERRORS_TASK if group == "tasks" else NEED_MAIN_TASK
                message = template.format(name=name)
            else:
                message = UNKNOWN_NEED.format(name=name, hint=did_you_mean(name, own))
            report.at((group, index, "needs", at), message)
        needs.setdefault(task["id"], valid)
    _report_cycles(data, group, needs, report)
    return {task: _closure(task, needs) for task in needs}


def _closure(task: str, needs: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(needs.get(task, ()))
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(needs.get(name, ()))
    return seen


def _report_cycles(
    data: dict[str, Any], group: str, needs: dict[str, list[str]], report: Reporter
) -> None:
    """Name each dependency cycle once, at the ``needs`` of its first task."""
    index_of = {task["id"]: i for i, task in reversed(list(enumerate(data.get(group) or [])))}
    if all(index_of[dep] < index_of[task] for task, deps in needs.items() for dep in deps):
        return  # every task needs only tasks listed before it, as most flows are written
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in needs:
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, child = stack.pop()
            if child == 0:
                if state.get(node) == 2:
                    continue
                state[node] = 1
                path.append(node)
            deps = needs.get(node, [])
            if child < len(deps):
                stack.append((node, child + 1))
                dep = deps[child]
                if state.get(dep) == 1:
                    cycle = [*path[path.index(dep) :], dep]
                    report.at(
                        (group, index_of[cycle[0]], "needs"),
                        CYCLE.format(cycle=" -> ".join(cycle)),
                    )
                elif state.get(dep) != 2:
                    stack.append((dep, 0))
            else:
                state[node] = 2
                path.pop()


def _check_templates(
    data: dict[str, Any],
    report: Reporter,
    main: list[str],
    upstream: dict[str, set[str]],
    errors_upstream: dict[str, set[str]],
) -> None:
    inputs = list(data.get("inputs") or {})
    secrets = list(data.get("secrets") or [])
    flow_scope = Scope(inputs, secrets, tasks=[])
    for path, text in templcheck.strings(data.get("env"), ("env",)):
        templcheck.check_string(text, path, flow_scope, report)
    for index, task in enumerate(data.get("tasks") or []):
        scope = Scope(inputs, secrets, main, upstream.get(task["id"], set()), task["id"])
        templcheck.check_task(task, ("tasks", index), scope, report)
    for index, task in enumerate(data.get("errors") or []):
        visible = main + sorted(errors_upstream.get(task["id"], set()))
        scope = Scope(inputs, secrets, visible, set(), task["id"], in_errors=True)
        templcheck.check_task(task, ("errors", index), scope, report)


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
