"""Runs through the run service on a real single-node swarm: a flow with a file
input and task outputs passed along ``needs``, and restart reconciliation after
the runner executing a run is killed with SIGKILL (its service is found by
label and watched to the end, or removed when no run claims it)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from enginekit import MANUAL, kill_runner_mid_task, task
from sqlalchemy.engine import Engine

from runner.backends.base import LABEL_OWNER
from runner.backends.swarm_backend import SwarmBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.service import RunService
from runner.state.records import Status
from runner.state.store import RunStore

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

FLOW: dict[str, Any] = {
    "id": "report",
    "inputs": {"data": {"type": "file", "required": True}},
    "tasks": [
        task("count", 'echo "file=$INPUT_DATA"', 'wc -l < "{{ inputs.data }}"',
             'echo "rows=$(wc -l < "{{ inputs.data }}")" >> "$FLOWBOT_OUTPUT"'),
        task("show", 'echo "rows {{ tasks.count.outputs.rows }}"', needs=["count"]),
    ],
}
RESTART: dict[str, Any] = {"id": "restart", "tasks": [
    task("a", "echo started", "sleep 3", 'echo "v=1" >> "$FLOWBOT_OUTPUT"', "echo finished"),
    task("b", 'test "{{ tasks.a.outputs.v }}" = 1', needs=["a"]),
]}


class SwarmKit:
    def __init__(self, tmp_path: Path, engine: Engine, client: docker.DockerClient) -> None:
        self.source = tmp_path / "repo"
        self.source.mkdir()
        (self.source / "data.csv").write_text("a,b\n1,2\n3,4\n")
        self.client = client
        self.owner = f"test-{uuid.uuid4().hex[:10]}"
        self.store = RunStore(engine, SystemClock())
        self.data_dir = tmp_path / "data"
        self.service = RunService(self.store, SwarmBackend(client=client, owner=self.owner,
                                                           poll_seconds=0.05),
                                  self.data_dir, {}, SystemClock(), owner=self.owner)

    def submit(self, data: dict[str, Any], inputs: dict[str, Any] | None = None) -> str:
        flow = flow_from_data(data, path=f"flows/{data['id']}.yml")
        return str(self.service.submit(flow, inputs or {}, repo="o/r", commit=None,
                                       source=self.source, trigger=MANUAL).run_id)

    def log(self, run_id: str, task_id: str) -> str:
        from runner.running.logstore import LogKey

        row = self.store.attempts(run_id, task_id)[-1]
        return b"".join(self.service.logs.iterate(LogKey.of(row))).decode()

    def services(self) -> list[Any]:
        return list(self.client.services.list(filters={"label": f"{LABEL_OWNER}={self.owner}"}))

    def containers(self) -> list[Any]:
        return list(self.client.containers.list(
            all=True, filters={"label": f"{LABEL_OWNER}={self.owner}"}))

    def cleanup(self) -> None:
        for service in self.services():
            service.remove()


@pytest.fixture
def kit(tmp_path: Path, sqlite_engine: Engine, swarm_manager: docker.DockerClient,
        busybox_image: str) -> Any:
    made = SwarmKit(tmp_path, sqlite_engine, swarm_manager)
    yield made
    made.cleanup()


def test_a_flow_with_a_file_input_and_outputs_runs_on_swarm(kit: SwarmKit) -> None:
    run_id = kit.submit(FLOW, {"data": "@data.csv"})
    run = kit.service.execute(run_id)
    assert run.status is Status.SUCCESS, run.error
    assert kit.log(run_id, "count") == "file=/inputs/data\n3\n"
    assert kit.log(run_id, "show") == "rows 3\n"
    assert kit.services() == [] and kit.containers() == []


def _kill_runner_mid_task(kit: SwarmKit) -> str:
    run_id = kit.submit(RESTART)
    kill_runner_mid_task(kit.store, kit.data_dir, kit.owner, run_id, "swarm", 60)
    return run_id


def test_after_sigkill_the_service_is_found_and_watched_to_the_end(
    kit: SwarmKit,
) -> None:
    run_id = _kill_runner_mid_task(kit)
    assert kit.store.get_run(run_id).status is Status.RUNNING  # type: ignore[union-attr]
    assert len(kit.services()) == 1  # the killed runner's service lives on
    assert kit.service.reconcile(block=True) == [run_id]
    run = kit.store.get_run(run_id)
    assert run is not None and run.status is Status.SUCCESS, run.error
    assert [(a.attempt, a.status) for a in kit.store.attempts(run_id, "a")] == [
        (1, Status.SUCCESS)]
    assert "started\nfinished" in kit.log(run_id, "a")
    assert kit.services() == [] and kit.containers() == []


def test_after_sigkill_a_service_no_run_claims_is_removed(
    kit: SwarmKit,
) -> None:
    run_id = _kill_runner_mid_task(kit)
    kit.store.set_run_status(run_id, Status.CANCELLED, error="cancelled while it was down")
    assert len(kit.services()) == 1
    assert kit.service.reconcile(block=True) == []
    assert kit.services() == [] and kit.containers() == []
