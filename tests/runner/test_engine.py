"""The engine on the real Docker engine: needs order, parallelism, outputs
between tasks, the repository in the container, labels and listener events."""

from __future__ import annotations

import threading
from pathlib import Path

import docker
import pytest
from enginekit import Kit, leftover, make_kit, task
from sqlalchemy.engine import Engine

from runner.backends.base import LABEL_ATTEMPT, LABEL_OWNER, LABEL_RUN, LABEL_TASK
from runner.state.records import AttemptRow, EventKind, Status

pytestmark = pytest.mark.docker


def _span(rows: list[AttemptRow], task_id: str) -> tuple[float, float]:
    row = next(r for r in rows if r.task_id == task_id)
    assert row.started_at is not None and row.finished_at is not None
    return row.started_at.timestamp(), row.finished_at.timestamp()


def test_tasks_run_in_needs_order_and_independent_ones_overlap(
    kit: Kit, docker_client: docker.DockerClient
) -> None:
    run = kit.run({"id": "diamond", "tasks": [
        task("a", "echo a"),
        task("b", "sleep 1", needs=["a"]),
        task("c", "sleep 1", needs=["a"]),
        task("d", "echo d", needs=["b", "c"]),
    ]})
    assert run.status is Status.SUCCESS, run.error
    rows = kit.store.attempts(run.id)
    a, b, c, d = (_span(rows, t) for t in "abcd")
    assert a[1] <= min(b[0], c[0])
    assert b[0] < c[1] and c[0] < b[1]  # b and c overlapped
    assert d[0] >= max(b[1], c[1])
    assert leftover(docker_client, kit.owner) == []


def test_max_parallel_one_runs_independent_tasks_one_after_another(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client, max_parallel=1)
    run = kit.run({"id": "fan", "tasks": [task("x", "sleep 0.3"), task("y", "sleep 0.3")]})
    assert run.status is Status.SUCCESS
    x, y = (_span(kit.store.attempts(run.id), t) for t in "xy")
    assert x[1] <= y[0] or y[1] <= x[0]


def test_outputs_flow_to_later_tasks_and_are_stored(kit: Kit) -> None:
    run = kit.run({"id": "outs", "tasks": [
        task("produce", 'echo "count=42" >> "$FLOWBOT_OUTPUT"',
             "printf 'report<<EOF\\nline one\\nline two\\nEOF\\n' >> \"$FLOWBOT_OUTPUT\""),
        task("consume", 'test "{{ tasks.produce.outputs.count }}" = 42',
             'echo "got {{ tasks.produce.outputs.report }}"',
             'echo "missing=[{{ tasks.produce.outputs.nope }}]"', needs=["produce"]),
    ]})
    assert run.status is Status.SUCCESS, run.error
    assert kit.store.outputs(run.id)["produce"] == {"count": "42",
                                                    "report": "line one\nline two"}
    assert "got line one\nline two\nmissing=[]" in kit.log(run.id, "consume")


def test_tasks_see_the_repository_and_inputs_and_runs_do_not_share_files(kit: Kit) -> None:
    flow = {"id": "files", "inputs": {"n": {"type": "int", "default": 1}}, "tasks": [
        task("read", "cat data.csv", 'test "$INPUT_N" = 7', "test {{ inputs.n }} -eq 7",
             "test ! -e mine", "touch mine", 'echo "pwd=$(pwd)" >> "$FLOWBOT_OUTPUT"'),
    ]}
    first = kit.run(flow, {"n": "7"})
    second = kit.run(flow, {"n": 7})
    assert (first.status, second.status) == (Status.SUCCESS, Status.SUCCESS), second.error
    assert first.inputs == {"n": 7}
    assert "a,b\n1,2" in kit.log(first.id, "read")
    assert kit.store.outputs(first.id)["read"]["pwd"] == "/workspace"
    assert not (kit.source / "mine").exists()


def test_containers_are_labelled_and_removed_and_listeners_hear_every_change(
    kit: Kit, docker_client: docker.DockerClient
) -> None:
    seen: dict[str, str] = {}
    finished = threading.Event()

    def peek() -> None:
        while not finished.is_set() and not seen:
            for container in leftover(docker_client, kit.owner):
                seen.update(container.labels)
            finished.wait(0.02)

    spy = threading.Thread(target=peek)
    spy.start()
    try:
        run = kit.run({"id": "labels", "tasks": [task("only", "sleep 2")]})
    finally:
        finished.set()
        spy.join()
    assert seen[LABEL_RUN] == run.id and seen[LABEL_TASK] == "only"
    assert seen[LABEL_ATTEMPT] == "1" and seen[LABEL_OWNER] == kit.owner
    assert leftover(docker_client, kit.owner) == []
    kinds = [(e.kind, e.task_id, e.status) for e in kit.events if e.run_id == run.id]
    assert kinds == [
        (EventKind.STARTED, None, Status.RUNNING),
        (EventKind.TASK, "only", Status.RUNNING),
        (EventKind.TASK, "only", Status.SUCCESS),
        (EventKind.FINISHED, None, Status.SUCCESS),
    ]
    assert not (kit.service.data_dir / "work" / run.id).exists()
