"""Run admission: a flow asking for more than the operator's bounds is refused
with the file, task, field and bound; within them it is queued."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from sqlalchemy.engine import Engine

from runner.backends.limits import TaskLimits
from runner.state.records import Status
from tests.runner.enginekit import leftover, make_kit, task

pytestmark = pytest.mark.docker


def test_a_flow_over_the_bound_is_refused_at_admission(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client)
    kit.service.limits = TaskLimits(max_memory="2g", max_cpus=2)
    big = {"id": "big", "tasks": [task("ok", "true"),
                                  task("crunch", "true", resources={"cpus": 8})]}
    refused = kit.submit(big)
    assert refused.status is Status.FAILED
    assert refused.reason == (
        'flows/big.yml: task "crunch" asks for resources.cpus: 8, above this flowbot\'s limit '
        "of 2 (FLOWBOT_TASK_MAX_CPUS); ask for at most 2, or have the operator raise "
        "FLOWBOT_TASK_MAX_CPUS")
    run = kit.store.get_run(refused.run_id)
    assert run is not None and (run.status, run.error) == (Status.FAILED, refused.reason)
    fits = {"id": "fits", "tasks": [task("t", "true", resources={"memory": "2g", "cpus": 2})]}
    assert kit.submit(fits).status is Status.QUEUED


def test_a_flow_the_backend_cannot_honour_is_refused_at_admission(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client)
    gpu = {"id": "gpu", "tasks": [task("train", "true", pool="gpu")]}
    refused = kit.submit(gpu)
    assert refused.status is Status.FAILED
    assert refused.reason is not None
    assert refused.reason.startswith("flows/gpu.yml: tasks[0].pool")
    assert "docker backend" in refused.reason and "gpu" in refused.reason
    assert not leftover(docker_client, kit.owner)
