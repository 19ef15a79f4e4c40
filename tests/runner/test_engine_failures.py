"""Failure paths on the real engine: exit codes, skipped dependants, errors
handlers, retries with backoff, task and run timeouts, cancellation."""

from __future__ import annotations

import threading

import docker
import pytest
from enginekit import Kit, leftover, task

from runner.state.records import EventKind, Status
from tests.polling import wait_until

pytestmark = pytest.mark.docker


def _states(kit: Kit, run_id: str) -> dict[str, tuple[Status, int | None, int]]:
    return {r.task_id: (r.status, r.exit_code, r.attempts) for r in kit.store.task_rows(run_id)}


def test_a_failure_skips_dependants_and_runs_the_errors_tasks(kit: Kit) -> None:
    run = kit.run({"id": "breaks", "tasks": [
        task("ok", "true"),
        task("bad", "echo about to fail", "exit 3"),
        task("after", "true", needs=["bad"]),
    ], "errors": [
        task("alert", 'echo "env=$FLOWBOT_FAILED_TASK tpl={{ run.failed_task }}"',
             'echo "why={{ run.error }}"'),
    ]})
    assert run.status is Status.FAILED
    assert run.failed_task == "bad" and run.error == 'task "bad" failed: exit code 3'
    states = _states(kit, run.id)
    assert states["ok"] == (Status.SUCCESS, 0, 1)
    assert states["bad"] == (Status.FAILED, 3, 1)
    assert states["after"][0] is Status.SKIPPED
    assert states["alert"] == (Status.SUCCESS, 0, 1)
    log = kit.log(run.id, "alert")
    assert "env=bad tpl=bad" in log and 'why=task "bad" failed: exit code 3' in log
    reasons = {r.task_id: r.reason for r in kit.store.task_rows(run.id)}
    assert reasons["after"] == "needs bad, which ended failed"


def test_errors_tasks_are_skipped_when_the_run_succeeds(kit: Kit) -> None:
    run = kit.run({"id": "fine", "tasks": [task("ok", "true")],
                   "errors": [task("alert", "echo never")]})
    assert run.status is Status.SUCCESS
    assert _states(kit, run.id)["alert"] == (Status.SKIPPED, None, 0)


def test_retries_rerun_a_failed_task_with_backoff(kit: Kit) -> None:
    flaky = ('n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; '
             'echo "attempt $n"; [ "$n" -ge 3 ]')
    run = kit.run({"id": "flaky", "tasks": [
        task("flaky", flaky, retries={"limit": 3, "delay": "2s", "backoff": 3}),
    ]})
    assert run.status is Status.SUCCESS, run.error
    assert _states(kit, run.id)["flaky"] == (Status.SUCCESS, 0, 3)
    assert kit.sleeper.delays == [2.0, 6.0]
    attempts = kit.store.attempts(run.id, "flaky")
    assert [(a.attempt, a.status, a.exit_code) for a in attempts] == [
        (1, Status.FAILED, 1), (2, Status.FAILED, 1), (3, Status.SUCCESS, 0)]
    assert "attempt 2" in kit.log(run.id, "flaky", 2)


def test_retries_give_up_after_the_limit(kit: Kit) -> None:
    run = kit.run({"id": "hopeless", "tasks": [task("no", "exit 1", retries=1)]})
    assert run.status is Status.FAILED
    assert _states(kit, run.id)["no"] == (Status.FAILED, 1, 2)


def test_a_task_timeout_kills_its_container(
    kit: Kit, docker_client: docker.DockerClient
) -> None:
    run = kit.run({"id": "slow", "tasks": [task("slow", "sleep 60", timeout="1s"),
                                           task("next", "true", needs=["slow"])]})
    assert run.status is Status.FAILED
    assert run.error == 'task "slow" timed out: timed out after 1s'
    rows = {r.task_id: r for r in kit.store.task_rows(run.id)}
    assert rows["slow"].status is Status.TIMED_OUT and rows["next"].status is Status.SKIPPED
    assert rows["slow"].duration is not None and rows["slow"].duration < 30
    assert leftover(docker_client, kit.owner) == []


def test_a_run_timeout_stops_everything(kit: Kit, docker_client: docker.DockerClient) -> None:
    run = kit.run({"id": "long", "timeout": "2s", "tasks": [
        task("a", "sleep 60"), task("b", "sleep 60"), task("c", "true", needs=["a"])],
        "errors": [task("alert", 'echo "handled: {{ run.error }}"')]})
    assert run.status is Status.TIMED_OUT and run.error == "run timed out after 2s"
    states = _states(kit, run.id)
    assert states["a"][0] is Status.TIMED_OUT and states["b"][0] is Status.TIMED_OUT
    assert states["c"][0] is Status.SKIPPED
    assert "handled: run timed out after 2s" in kit.log(run.id, "alert")
    assert leftover(docker_client, kit.owner) == []


def test_cancel_from_another_thread_stops_the_run(
    kit: Kit, docker_client: docker.DockerClient
) -> None:
    submission = kit.submit({"id": "cancel-me", "tasks": [
        task("sleepy", "sleep 60"), task("later", "true", needs=["sleepy"])],
        "errors": [task("alert", "echo should not run")]})
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(
        kit.service.execute(submission.run_id)))
    worker.start()
    wait_until(lambda: any(e.kind is EventKind.TASK and e.status is Status.RUNNING
                           for e in kit.events), 30, "the task to start")
    wait_until(lambda: any(a.handle for a in kit.store.attempts(submission.run_id)), 30,
               "the container to be up")
    assert kit.service.cancel(submission.run_id)
    worker.join(60)
    run = kit.store.get_run(submission.run_id)
    assert run is not None and run.status is Status.CANCELLED
    states = _states(kit, run.id)
    assert states["sleepy"][0] is Status.CANCELLED
    assert states["later"][0] is Status.SKIPPED and states["alert"][0] is Status.SKIPPED
    assert leftover(docker_client, kit.owner) == []
    assert not kit.service.cancel(run.id)


def test_a_missing_image_with_pull_never_fails_the_task_clearly(kit: Kit) -> None:
    run = kit.run({"id": "noimage", "tasks": [
        task("t", "true", image="flowbot-test/absent:never", pull="never")]})
    assert run.status is Status.FAILED
    row = kit.store.task_rows(run.id)[0]
    assert row.status is Status.FAILED and row.exit_code is None
    assert "flowbot-test/absent:never is not present and pull: never" in (row.reason or "")
    assert run.error is not None and "pull: never" in run.error
