"""The ``needs`` graph of a flow: each need names a task of its group, no cycles,
and "is task X upstream of task T?" for the template checks.

Every step is linear in the size of the flow (tasks plus needs), in time and
memory, so a flow written as one long chain costs what its text costs. The one
exception is answering "upstream?" for a task that is not a direct need: that
builds, on first such question, each task's transitive upstream as a bitset
(an int), n²/8 bytes for n tasks — 31 KB at the 500-task limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runner.validation.diagnostics import Reporter, did_you_mean
from runner.validation.repair import STUB_PREFIX

UNKNOWN_NEED = 'needs "{name}", but there is no such task{hint}; {known}'
KNOWN_TASKS = {"tasks": "the tasks are: {names}", "errors": "the errors tasks are: {names}"}
NO_TASKS = {"tasks": "the flow has no other tasks", "errors": "there are no other errors tasks"}
SHOWN_TASKS = 10
NEED_ERRORS_TASK = 'needs "{name}", an errors task; main tasks cannot wait for errors tasks'
NEED_MAIN_TASK = (
    'needs "{name}", a main task; errors tasks run after the run failed, '
    "so they can only need other errors tasks"
)
CYCLE = "dependency cycle: {cycle}; remove one of these needs"


class Graph:
    """The valid ``needs`` of one task group, by task id, in flow order."""

    def __init__(self, needs: dict[str, list[str]]) -> None:
        self.needs = needs
        self._index = {task: i for i, task in enumerate(needs)}
        self._closure: list[int] | None = None  # bit i set: task i is upstream

    def upstream_of(self, task: str) -> Upstream:
        """The tasks ``task`` waits for, directly or through other tasks."""
        return Upstream(self, task)

    def reaches(self, task: str, name: str) -> bool:
        """True if ``task`` needs ``name``, directly or through other tasks."""
        direct = self.needs.get(task)
        if direct is None or name not in self._index:
            return False
        if name in direct:
            return True  # the common case: a direct need, no closure built
        return bool(self._closures()[self._index[task]] >> self._index[name] & 1)

    def upstream_names(self, task: str) -> list[str]:
        """Every upstream task of ``task``, in flow order (for messages only)."""
        if task not in self._index:
            return []
        bits = self._closures()[self._index[task]]
        names = list(self.needs)
        return [names[i] for i in range(bits.bit_length()) if bits >> i & 1]

    def _closures(self) -> list[int]:
        if self._closure is None:
            self._closure = _closures(self.needs, self._index)
        return self._closure


class Upstream:
    """A view of one task's upstream, usable with ``in``."""

    def __init__(self, graph: Graph, task: str) -> None:
        self._graph = graph
        self._task = task

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._graph.reaches(self._task, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._graph.upstream_names(self._task))


def _closures(needs: dict[str, list[str]], index: dict[str, int]) -> list[int]:
    """Each task's transitive upstream as a bitset, in one pass over a topological
    order; tasks on a cycle fall back to one search each (the flow is invalid)."""
    closure = [0] * len(index)
    order, cyclic = _topological(needs, index)
    for task in order:
        bits = 0
        for dep in needs[task]:
            at = index[dep]
            bits |= closure[at] | (1 << at)
        closure[index[task]] = bits
    for task in cyclic:
        closure[index[task]] = _search(task, needs, index)
    return closure


def _topological(needs: dict[str, list[str]], index: dict[str, int]) -> tuple[list[str], list[str]]:
    """Tasks ordered so each comes after its needs (Kahn), and those left on cycles."""
    waiting = {task: len(deps) for task, deps in needs.items()}
    users: dict[str, list[str]] = {}
    for task, deps in needs.items():
        for dep in deps:
            users.setdefault(dep, []).append(task)
    order = [task for task, count in waiting.items() if count == 0]
    for task in order:  # grows while it is walked
        for user in users.get(task, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                order.append(user)
    done = set(order)
    return order, [task for task in needs if task not in done]


def _search(task: str, needs: dict[str, list[str]], index: dict[str, int]) -> int:
    bits = 0
    stack = list(needs[task])
    while stack:
        name = stack.pop()
        if not bits >> index[name] & 1:
            bits |= 1 << index[name]
            stack.extend(needs[name])
    return bits


def check(
    data: dict[str, Any], group: str, own: list[str], other: list[str], report: Reporter
) -> Graph:
    """Check ``needs`` in one task group; return its graph of valid needs."""
    own_set, other_set = set(own), set(other)
    needs: dict[str, list[str]] = {}
    for index, task in enumerate(data.get(group) or []):
        report.tick()
        valid = []
        for at, name in enumerate(task.get("needs") or []):
            if name in own_set:
                valid.append(name)
                continue
            if name in other_set:
                template = NEED_ERRORS_TASK if group == "tasks" else NEED_MAIN_TASK
                message = template.format(name=name)
            else:
                message = _unknown_need(group, own, task["id"], name)
            report.at((group, index, "needs", at), message)
        needs.setdefault(task["id"], valid)
    _report_cycles(data, group, needs, report)
    return Graph(needs)


def _unknown_need(group: str, own: list[str], task: str, name: str) -> str:
    """The message for a need naming no task: a suggestion, and the tasks it may
    name, the first few by name (never the stand-ins of malformed tasks)."""
    names = [n for n in own if n != task and not n.startswith(STUB_PREFIX)]
    if not names:
        known = NO_TASKS[group]
    else:
        shown = ", ".join(names[:SHOWN_TASKS])
        if len(names) > SHOWN_TASKS:
            shown += f" and {len(names) - SHOWN_TASKS} more"
        known = KNOWN_TASKS[group].format(names=shown)
    return UNKNOWN_NEED.format(name=name, hint=did_you_mean(name, names), known=known)


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
        on_path: dict[str, int] = {}  # task -> its place in path, for O(1) cycle cuts
        while stack:
            node, child = stack.pop()
            if child == 0:
                if state.get(node) == 2:
                    continue
                state[node] = 1
                on_path[node] = len(path)
                path.append(node)
            deps = needs.get(node, [])
            if child < len(deps):
                stack.append((node, child + 1))
                dep = deps[child]
                if state.get(dep) == 1:
                    cycle = [*path[on_path[dep] :], dep]
                    report.at(
                        (group, index_of[cycle[0]], "needs"),
                        CYCLE.format(cycle=" -> ".join(cycle)),
                    )
                elif state.get(dep) != 2:
                    stack.append((dep, 0))
            else:
                state[node] = 2
                path.pop()
                del on_path[node]
