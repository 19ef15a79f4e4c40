"""A Docker engine lost mid-run: flowbot waits for it (within
FLOWBOT_ENGINE_RECONNECT_SECONDS), re-attaches, and the attempt ends as the task
did; the engine is taken away through a socket proxy, never by stopping dockerd."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import docker
import pytest
from sqlalchemy.engine import Engine

from runner.backends.docker_backend import DockerBackend
from runner.running.workspace import repo_dir
from runner.state.records import RunRecord, Status
from tests.polling import wait_until
from tests.runner.backends.engine_proxy import EngineProxy
from tests.runner.enginekit import Kit, leftover, make_kit, task

# The docker SDK does not close the socket of a failed unix connect (each ping while
# the engine is away): CPython frees it at once, with a ResourceWarning.
pytestmark = [pytest.mark.docker,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

GATED = task("hold", "echo before", "while [ ! -e gate ]; do sleep 0.1; done", "echo after",
             network="none")
OUTAGE_SECONDS = 6


def _kit(tmp_path: Path, engine: Engine, proxy: EngineProxy, reconnect: float) -> Kit:
    kit = make_kit(tmp_path, engine, proxy.client())
    kit.service.backend = DockerBackend(client=proxy.client(), owner=kit.owner,
                                        reconnect_seconds=reconnect)
    return kit


def _start(kit: Kit) -> tuple[str, threading.Thread, list[RunRecord]]:
    run_id = kit.submit({"id": "gated", "tasks": [GATED]}).run_id
    ended: list[RunRecord] = []
    thread = threading.Thread(target=lambda: ended.append(kit.service.execute(run_id)))
    thread.start()
    wait_until(lambda: _log_has(kit, run_id, "before"), 60, "the task to print")
    return run_id, thread, ended


def _log_has(kit: Kit, run_id: str, text: str) -> bool:
    rows = kit.store.attempts(run_id, "hold")
    return bool(rows and rows[0].log_path and Path(rows[0].log_path).is_file()
                and text in Path(rows[0].log_path).read_text())


def test_a_task_that_ends_while_the_engine_is_away_succeeds_and_is_cleaned_up(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
    busybox_image: str, proxy: EngineProxy,
) -> None:
    kit = _kit(tmp_path, sqlite_engine, proxy, reconnect=60)
    run_id, thread, ended = _start(kit)
    proxy.stop()  # the engine socket is gone: every connection cut, new ones refused
    (repo_dir(tmp_path / "data", run_id) / "gate").touch()  # the task exits 0 meanwhile
    time.sleep(OUTAGE_SECONDS)
    assert thread.is_alive()  # still waiting for the engine, not failed
    proxy.start()
    thread.join(120)
    [run] = ended
    assert (run.status, run.error) == (Status.SUCCESS, None)
    [attempt] = kit.store.attempts(run_id, "hold")
    assert (attempt.status, attempt.exit_code) == (Status.SUCCESS, 0)
    assert kit.log(run_id, "hold") == "before\nafter\n"  # the log resumed, nothing twice
    assert leftover(docker_client, kit.owner) == []


def test_an_engine_away_longer_than_the_budget_fails_the_attempt_with_the_reason(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
    busybox_image: str, proxy: EngineProxy,
) -> None:
    kit = _kit(tmp_path, sqlite_engine, proxy, reconnect=2)
    run_id, thread, ended = _start(kit)
    proxy.stop()
    thread.join(120)
    [run] = ended
    assert run.status is Status.FAILED
    [attempt] = kit.store.attempts(run_id, "hold")
    assert attempt.status is Status.FAILED
    assert attempt.reason is not None and attempt.reason.startswith("lost the Docker engine at ")
    assert "did not answer again within 2s (FLOWBOT_ENGINE_RECONNECT_SECONDS)" in attempt.reason
    assert len(leftover(docker_client, kit.owner)) == 1  # the engine could not remove it...
    proxy.start()  # ...so the next start, once the engine is back, does
    again = kit.run({"id": "quick", "tasks": [task("t", "true", network="none")]})
    assert again.status is Status.SUCCESS
    assert leftover(docker_client, kit.owner) == []
