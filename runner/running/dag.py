"""Ordering a flow's tasks by ``needs``: pure decisions over task states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runner.model.flows import Task
from runner.state.records import Status


def ready(tasks: Sequence[Task], states: Mapping[str, Status]) -> list[Task]:
    """Queued tasks whose needs all succeeded, in flow order."""
    return [
        t for t in tasks
        if states[t.id] is Status.QUEUED
        and all(states.get(n) is Status.SUCCESS for n in t.needs)
    ]


def blocked(tasks: Sequence[Task], states: Mapping[str, Status]) -> dict[str, str]:
    """Queued tasks that can never start, with the need that stops them."""
    result: dict[str, str] = {}
    for t in tasks:
        if states[t.id] is not Status.QUEUED:
            continue  # already decided
        for need in t.needs:
            state = states.get(need)
            if state is not None and state.terminal and state is not Status.SUCCESS:
                result[t.id] = f"needs {need}, which ended {state.value}"
                break
    return result
