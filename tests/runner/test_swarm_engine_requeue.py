"""The swarm backend loses its engine right as a run is claimed, before any service
of it exists: past FLOWBOT_ENGINE_RECONNECT_SECONDS it raises EngineLost as the docker
backend does, so the run goes back to the queue (not failed) and, once the engine is
back, runs with one attempt and one service. Real single-node swarm, cut through the
socket proxy."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest
from sqlalchemy.engine import Engine

from runner.backends.base import LABEL_OWNER, LABEL_RUN
from runner.backends.swarm_backend import SwarmBackend
from runner.state.records import Status
from tests.polling import wait_until
from tests.runner.backends.engine_proxy import EngineProxy
from tests.runner.enginekit import REQUEUED, Kit, cut_kit, task

# The docker SDK does not close the socket of a failed unix connect (each ping while
# the engine is away): CPython frees it at once, with a ResourceWarning.
pytestmark = [pytest.mark.docker,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

QUICK = {"id": "quick", "tasks": [task("t", "echo hello")]}


def _swarm_kit(tmp_path: Path, engine: Engine, proxy: EngineProxy) -> Kit:
    """The run service on one worker over the swarm backend, through the proxy, with a
    1 s reconnect budget; the engine is cut as the first run is claimed."""
    return cut_kit(tmp_path, engine, proxy.client(),
                   lambda owner: SwarmBackend(client=proxy.client(), owner=owner,
                                              reconnect_seconds=1, poll_seconds=0.05),
                   proxy.stop)


def test_swarm_run_claimed_as_the_engine_leaves_is_queued_again_and_runs_once_it_is_back(
    tmp_path: Path, sqlite_engine: Engine, swarm_manager: docker.DockerClient,
    busybox_image: str, proxy: EngineProxy,
) -> None:
    kit = _swarm_kit(tmp_path, sqlite_engine, proxy)
    kit.service.start(1)
    restored = False
    try:
        run_id = kit.submit(QUICK).run_id
        wait_until(lambda: kit.moves(run_id)[-1:] == [("running", "queued")], 60,
                   "the run to go back to the queue")
        run = kit.store.get_run(run_id)
        assert run is not None and (run.status, run.owner) == (Status.QUEUED, None)
        assert run.error is not None and run.error.startswith("Waiting for the Docker engine")
        assert kit.store.attempts(run_id) == []
        assert swarm_manager.services.list(filters={"label": f"{LABEL_RUN}={run_id}"}) == []
        time.sleep(2)
        assert kit.moves(run_id) == REQUEUED
        proxy.start()
        restored = True
        wait_until(lambda: (r := kit.store.get_run(run_id)) is not None
                   and r.status.terminal, 120, "the run to end once the engine is back")
    finally:
        if not restored:
            proxy.start()  # the service stops through the engine
        kit.service.stop()
    kit.check_ran_once_after_a_requeue(run_id, "t", "hello\n")
    assert swarm_manager.services.list(filters={"label": f"{LABEL_OWNER}={kit.owner}"}) == []
