"""The run service: concurrency policies for every trigger, worker threads
taking queued runs, cancelling queued runs."""

from __future__ import annotations

import os
import time
from typing import Any

import docker
import pytest
from enginekit import Kit, leftover, task
from sqlalchemy.engine import Engine

from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.service import RunService
from runner.running.workspace import repo_dir, staging_dir
from runner.state.records import EventKind, Status, Trigger, TriggerType
from tests.polling import wait_until

pytestmark = pytest.mark.docker


def _flow(policy: str, command: str = "sleep 1") -> dict[str, Any]:
    return {"id": f"limited-{policy}", "concurrency": {"limit": 1, "policy": policy},
            "tasks": [task("t", command)]}


def _wait_final(kit: Kit, run_id: str) -> Any:
    def final() -> Any:
        run = kit.store.get_run(run_id)
        return run if run is not None and run.status.terminal else None
    return wait_until(final, 30, f"run {run_id} to finish")


def test_skip_policy_records_the_new_run_as_skipped(kit: Kit) -> None:
    first = kit.submit(_flow("skip"))
    second = kit.submit(_flow("skip"))
    other_repo = kit.submit(_flow("skip"), repo="o/elsewhere")
    assert first.status is Status.QUEUED and other_repo.status is Status.QUEUED
    assert second.status is Status.SKIPPED
    assert second.reason == (
        f"concurrency limit 1 reached: run {first.run_id} of this flow is still active")
    assert kit.store.get_run(second.run_id).status is Status.SKIPPED  # type: ignore[union-attr]
    assert (second.run_id, EventKind.FINISHED) in [(e.run_id, e.kind) for e in kit.events]


def test_queue_policy_starts_the_next_run_when_the_slot_frees(
    kit: Kit, docker_client: docker.DockerClient
) -> None:
    kit.service.start(workers=2)
    try:
        first = kit.submit(_flow("queue"))
        second = kit.submit(_flow("queue"))
        one, two = _wait_final(kit, first.run_id), _wait_final(kit, second.run_id)
    finally:
        kit.service.stop()
    assert (one.status, two.status) == (Status.SUCCESS, Status.SUCCESS)
    assert two.started_at >= one.finished_at
    assert leftover(docker_client, kit.owner) == []


def test_cancel_policy_cancels_the_active_run(kit: Kit) -> None:
    kit.service.start(workers=2)
    try:
        first = kit.submit(_flow("cancel", "sleep 60"))
        wait_until(lambda: kit.store.attempts(first.run_id), 20,
                   "the first run's container")
        second = kit.submit(_flow("cancel", "true"))
        one, two = _wait_final(kit, first.run_id), _wait_final(kit, second.run_id)
    finally:
        kit.service.stop()
    assert one.status is Status.CANCELLED and two.status is Status.SUCCESS


def test_a_queued_run_can_be_cancelled_before_it_starts(kit: Kit) -> None:
    submission = kit.submit({"id": "waiting", "tasks": [task("t", "true")]})
    assert kit.service.cancel(submission.run_id)
    run = kit.store.get_run(submission.run_id)
    assert run is not None and run.status is Status.CANCELLED
    assert [r.status for r in kit.store.task_rows(run.id)] == [Status.SKIPPED]
    assert kit.service.execute(run.id).status is Status.CANCELLED
    assert not (kit.service.data_dir / "work" / run.id).exists()


def test_a_queued_run_always_has_its_files_and_no_staging_is_left(kit: Kit) -> None:
    data_dir = kit.service.data_dir
    queued = kit.submit(_flow("queue", "true"))
    replayed = kit.service.submit(
        flow_from_data(_flow("queue", "true"), path="flows/x.yml"), {}, repo="o/r",
        commit=None, source=kit.source, trigger=Trigger(TriggerType.MANUAL, "x"),
        request_key="delivery-1:1")
    again = kit.service.submit(
        flow_from_data(_flow("queue", "true"), path="flows/x.yml"), {}, repo="o/r",
        commit=None, source=kit.source, trigger=Trigger(TriggerType.MANUAL, "x"),
        request_key="delivery-1:1")
    assert again.run_id == replayed.run_id  # the replay found its run
    for run_id in (queued.run_id, replayed.run_id):
        assert (repo_dir(data_dir, run_id) / "data.csv").read_text() == "a,b\n1,2\n"
    assert not list((data_dir / "work").glob(".staging-*"))  # the replay's copy went too


def test_a_preparation_a_crash_interrupted_is_cleared_at_the_next_start(
    kit: Kit, sqlite_engine: Engine
) -> None:
    data_dir = kit.service.data_dir
    old, young = staging_dir(data_dir), staging_dir(data_dir)
    (old / "repo").mkdir(parents=True)
    young.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    RunService(kit.store, kit.service.backend, data_dir, {}, SystemClock())
    assert not old.exists() and young.exists()  # a young one may be in progress elsewhere
