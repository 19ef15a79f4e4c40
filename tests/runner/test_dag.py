"""Pure ordering by needs."""

from runner.model.flows import task_from_data
from runner.running.dag import blocked, ready
from runner.state.records import Status

TASKS = tuple(task_from_data({"id": i, "image": "x", "commands": ["true"], "needs": n})
              for i, n in [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])])


def test_only_tasks_whose_needs_succeeded_are_ready() -> None:
    states = {"a": Status.QUEUED, "b": Status.QUEUED, "c": Status.QUEUED, "d": Status.QUEUED}
    assert [t.id for t in ready(TASKS, states)] == ["a"]
    states["a"] = Status.SUCCESS
    assert [t.id for t in ready(TASKS, states)] == ["b", "c"]
    states.update(b=Status.SUCCESS, c=Status.RUNNING)
    assert ready(TASKS, states) == []


def test_tasks_behind_a_failure_are_blocked_with_the_reason() -> None:
    states = {"a": Status.SUCCESS, "b": Status.FAILED, "c": Status.RUNNING, "d": Status.QUEUED}
    assert blocked(TASKS, states) == {"d": "needs b, which ended failed"}
