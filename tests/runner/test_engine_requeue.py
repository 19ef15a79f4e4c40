"""A Docker engine lost right as a run is claimed, before any container of it starts:
past FLOWBOT_ENGINE_RECONNECT_SECONDS the run goes back to the queue with a note (not
failed), the workers wait for the engine, and once it is back the run starts again and
succeeds with one attempt and one container. A run whose container did start keeps
the reconnect budget's verdict. The engine is taken away through a socket proxy."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest
from sqlalchemy.engine import Engine

from runner.backends.base import LABEL_RUN
from runner.backends.docker_backend import DockerBackend
from runner.running.workspace import repo_dir
from runner.state.records import Status
from tests.polling import wait_until
from tests.runner.backends.engine_proxy import EngineProxy
from tests.runner.enginekit import REQUEUED, Kit, cut_kit, leftover, task

# The docker SDK does not close the socket of a failed unix connect (each ping while
# the engine is away): CPython frees it at once, with a ResourceWarning.
pytestmark = [pytest.mark.docker,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

QUICK = {"id": "quick", "tasks": [task("t", "echo hello", network="none")]}
GATED = {"id": "gated", "tasks": [task(
    "hold", "echo before", "while [ ! -e gate ]; do sleep 0.1; done", network="none")]}
AWAY_SECONDS = 3  # the engine stays away this long after the run went back to the queue


def _kit(tmp_path: Path, engine: Engine, proxy: EngineProxy, *, cut_on_start: bool) -> Kit:
    """The run service on workers, through the proxy, with a 1 s reconnect budget; with
    ``cut_on_start``, the engine is cut as the first run is claimed."""
    return cut_kit(tmp_path, engine, proxy.client(),
                   lambda owner: DockerBackend(client=proxy.client(), owner=owner,
                                               reconnect_seconds=1),
                   proxy.stop if cut_on_start else None)


def _containers_created(client: docker.DockerClient, run_id: str, since: datetime) -> int:
    """Containers the engine created for ``run_id`` since ``since`` (its own event log)."""
    events = client.events(since=since, until=datetime.now(UTC) + timedelta(seconds=1),
                           filters={"type": "container", "event": "create",
                                    "label": f"{LABEL_RUN}={run_id}"}, decode=True)
    return len(list(events))


def test_a_run_claimed_as_the_engine_leaves_is_queued_again_and_runs_once_it_is_back(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
    busybox_image: str, proxy: EngineProxy,
) -> None:
    kit = _kit(tmp_path, sqlite_engine, proxy, cut_on_start=True)
    since = datetime.now(UTC) - timedelta(seconds=1)
    kit.service.start(1)
    try:
        run_id = kit.submit(QUICK).run_id
        wait_until(lambda: kit.moves(run_id)[-1:] == [("running", "queued")], 60,
                   "the run to go back to the queue")
        run = kit.store.get_run(run_id)
        assert run is not None and (run.status, run.owner) == (Status.QUEUED, None)
        assert run.error == (
            "Waiting for the Docker engine: it went away before this run's first task could "
            f"start, so the run is queued again and starts when the engine is back "
            f"(`/cancel {run_id}` drops it).")
        assert kit.store.attempts(run_id) == []  # nothing of the attempt that never started
        assert [(r.status, r.attempts) for r in kit.store.task_rows(run_id)] == [
            (Status.QUEUED, 0)]
        assert repo_dir(tmp_path / "data", run_id).is_dir()  # its files are kept for later
        time.sleep(AWAY_SECONDS)
        # the workers wait for the engine: not claimed again meanwhile, not failed
        assert kit.moves(run_id) == REQUEUED
        proxy.start()
        wait_until(lambda: (r := kit.store.get_run(run_id)) is not None
                   and r.status.terminal, 120, "the run to end once the engine is back")
    finally:
        kit.service.stop()
    kit.check_ran_once_after_a_requeue(run_id, "t", "hello\n")
    assert _containers_created(docker_client, run_id, since) == 1
    assert leftover(docker_client, kit.owner) == []


def test_a_run_whose_container_started_keeps_the_reconnect_budgets_verdict(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
    busybox_image: str, proxy: EngineProxy,
) -> None:
    kit = _kit(tmp_path, sqlite_engine, proxy, cut_on_start=False)
    kit.service.start(1)
    try:
        run_id = kit.submit(GATED).run_id
        wait_until(lambda: any(a.handle for a in kit.store.attempts(run_id)), 60,
                   "the container to start")
        proxy.stop()
        wait_until(lambda: (r := kit.store.get_run(run_id)) is not None
                   and r.status.terminal, 120, "the run to end")
    finally:
        proxy.start()
        kit.service.stop()
    run = kit.store.get_run(run_id)
    assert run is not None and run.status is Status.FAILED
    assert ("running", "queued") not in kit.moves(run_id)
    [attempt] = kit.store.attempts(run_id)
    assert attempt.reason is not None and attempt.reason.startswith("lost the Docker engine at ")
    again = kit.run(QUICK)  # the next start, with the engine back, removes the leftover
    assert again.status is Status.SUCCESS
    assert leftover(docker_client, kit.owner) == []
