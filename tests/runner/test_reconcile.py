"""Restart reconciliation: a runner killed with SIGKILL mid-run, then a new
service reconciles. Surviving containers are re-attached, vanished ones count
as failed attempts ("runner restarted") under the retry policy, stray labelled
containers are removed, and every run ends in a truthful state."""

from __future__ import annotations

from typing import Any

import docker
import pytest
from enginekit import Kit, kill_runner_mid_task, leftover, task

from runner.backends.base import LABEL_ATTEMPT, LABEL_OWNER, LABEL_RUN, LABEL_TASK
from runner.state.records import Status

pytestmark = pytest.mark.docker

FLOW: dict[str, Any] = {"id": "restart", "tasks": [
    task("a", "echo started", "sleep 3", 'echo "v=1" >> "$FLOWBOT_OUTPUT"', "echo finished"),
    task("b", 'test "{{ tasks.a.outputs.v }}" = 1', needs=["a"]),
]}


def _kill_runner_mid_task(kit: Kit, flow: dict[str, Any]) -> str:
    run_id = kit.submit(flow).run_id
    kill_runner_mid_task(kit.store, kit.service.data_dir, kit.owner, run_id, "docker", 30)
    return run_id


def test_a_surviving_container_is_reattached_and_the_run_completes(
    kit: Kit, docker_client: docker.DockerClient
) -> None:
    run_id = _kill_runner_mid_task(kit, FLOW)
    assert kit.store.get_run(run_id).status is Status.RUNNING  # type: ignore[union-attr]
    assert len(leftover(docker_client, kit.owner)) == 1
    assert kit.service.reconcile(block=True) == [run_id]
    run = kit.store.get_run(run_id)
    assert run is not None and run.status is Status.SUCCESS, run.error
    attempts = kit.store.attempts(run_id, "a")
    assert [(a.attempt, a.status) for a in attempts] == [(1, Status.SUCCESS)]
    assert "started\nfinished" in kit.log(run_id, "a")
    assert leftover(docker_client, kit.owner) == []


@pytest.mark.parametrize(("retries", "expected"), [(0, Status.FAILED), (1, Status.SUCCESS)])
def test_a_vanished_container_is_a_failed_attempt_under_the_retry_policy(
    kit: Kit, docker_client: docker.DockerClient,
    retries: int, expected: Status,
) -> None:
    flow = {**FLOW, "tasks": [{**FLOW["tasks"][0], "retries": retries}, FLOW["tasks"][1]]}
    run_id = _kill_runner_mid_task(kit, flow)
    for container in leftover(docker_client, kit.owner):
        container.remove(force=True)
    kit.service.reconcile(block=True)
    run = kit.store.get_run(run_id)
    assert run is not None and run.status is expected
    first = kit.store.attempts(run_id, "a")[0]
    assert (first.status, first.reason) == (Status.FAILED, "runner restarted")
    rows = {r.task_id: r for r in kit.store.task_rows(run_id)}
    if expected is Status.FAILED:
        assert rows["b"].status is Status.SKIPPED
        assert run.error == 'task "a" failed: runner restarted'
    else:
        assert rows["a"].attempts == 2 and rows["b"].status is Status.SUCCESS
    assert leftover(docker_client, kit.owner) == []


def test_stray_labelled_containers_are_removed(
    kit: Kit, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    docker_client.containers.run(busybox_image, ["sleep", "60"], detach=True, labels={
        LABEL_OWNER: kit.owner, LABEL_RUN: "gone", LABEL_TASK: "t", LABEL_ATTEMPT: "1"})
    assert kit.service.reconcile(block=True) == []
    assert leftover(docker_client, kit.owner) == []
