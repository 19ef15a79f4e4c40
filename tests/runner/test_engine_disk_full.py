"""A full data disk (a real 8 MiB tmpfs holding the database, logs and
workspaces) on the real Docker engine: the run ends truthfully, as failed with
the reason, once space returns; never left running."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from enginekit import MANUAL, task
from sqlalchemy.engine import Engine

from runner.backends.docker_backend import DockerBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.service import RunService
from runner.state.db import connect
from runner.state.records import EventKind, RunEvent, Status
from runner.state.store import RunStore
from tests.polling import wait_until
from tests.smalldisk import fill, small_disk_fixture  # noqa: F401  (the fixture)

pytestmark = pytest.mark.docker


@pytest.fixture
def disk_engine(small_disk: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{small_disk / 'flowbot.db'}")
    yield engine
    engine.dispose()


def test_a_full_disk_fails_the_run_once_space_returns(
    small_disk: Path, disk_engine: Engine, tmp_path: Path,
    docker_client: docker.DockerClient, busybox_image: str,
) -> None:
    owner = f"test-{uuid.uuid4().hex[:10]}"
    store = RunStore(disk_engine, SystemClock())
    events: list[RunEvent] = []
    ended = threading.Event()

    def listen(event: RunEvent) -> None:
        events.append(event)
        if event.kind is EventKind.FINISHED:
            ended.set()

    service = RunService(store, DockerBackend(client=docker_client, owner=owner),
                         small_disk / "data", {}, SystemClock(), listeners=[listen],
                         owner=owner)
    source = tmp_path / "repo"
    source.mkdir()
    (source / "f").write_text("x\n")
    flow = flow_from_data({"id": "loud", "tasks": [task(
        "t", "echo started", "while [ ! -e go ]; do sleep 0.1; done",
        "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 20000000")]}, "flows/loud.yml")
    submission = service.submit(flow, {}, repo="o/r", commit=None, source=source,
                                trigger=MANUAL)
    assert submission.status is Status.QUEUED
    runner = threading.Thread(target=service.execute, args=(submission.run_id,))
    runner.start()
    wait_until(lambda: ended.is_set() or any(a.handle for a in store.attempts(
        submission.run_id)), 60, "the task to start")
    assert not ended.is_set(), "the run ended before its task started"
    filler = fill(small_disk / "filler")
    (small_disk / "data" / "work" / submission.run_id / "repo" / "go").touch()
    # The task's output cannot be stored, nor the run's end: it waits, it does not give up.
    assert not ended.wait(3)
    assert store.get_run(submission.run_id).status is Status.RUNNING  # type: ignore[union-attr]
    filler.unlink()  # space returns
    assert ended.wait(120), "the run never ended"
    runner.join(60)
    run = store.get_run(submission.run_id)
    assert run is not None and run.status is Status.FAILED, run
    assert run.error and "No space left on device" in run.error
    attempt = store.attempts(run.id, "t")[0]
    assert attempt.status is Status.FAILED
    assert attempt.reason and "log incomplete: cannot write" in attempt.reason
    assert [e.status for e in events if e.kind is EventKind.FINISHED] == [Status.FAILED]

