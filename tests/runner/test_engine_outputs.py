"""$FLOWBOT_OUTPUT on the real Docker engine: a huge file is read only up to
the limit (never whole), and the attempt says the rest was ignored."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import docker
import pytest
from enginekit import Kit, make_kit, task
from sqlalchemy.engine import Engine

from runner.records import Status

pytestmark = pytest.mark.docker


@pytest.fixture
def kit(tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
        busybox_image: str) -> Kit:
    return make_kit(tmp_path, sqlite_engine, docker_client)


def test_a_huge_output_file_is_read_with_a_bound_and_noted(kit: Kit) -> None:
    tracemalloc.start()
    try:
        run = kit.run({"id": "huge", "tasks": [task(
            "t", 'echo "count=42" >> "$FLOWBOT_OUTPUT"',
            'truncate -s 300M "$FLOWBOT_OUTPUT"')]})  # sparse: no disk used
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.status is Status.SUCCESS, run.error
    assert peak < 32 * 1024 * 1024  # the file was 300 MiB
    assert kit.store.outputs(run.id)["t"] == {"count": "42"}
    assert kit.store.attempts(run.id, "t")[0].reason == (
        "outputs past the first 1 MiB of $FLOWBOT_OUTPUT ignored")
