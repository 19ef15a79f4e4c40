"""Helpers shared by the engine, service and reconcile tests: a real run service
on the real Docker engine with a private owner label, and a repository dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from runner.backends.base import LABEL_OWNER, Backend
from runner.backends.docker_backend import DockerBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.logstore import LogKey, LogStore
from runner.running.service import RunService
from runner.state.records import EventKind, RunEvent, RunRecord, Status, Trigger, TriggerType
from runner.state.store import RunStore
from tests.polling import wait_until

MANUAL = Trigger(TriggerType.MANUAL, "octocat")


@dataclass
class RecordingSleeper:
    """Records retry delays and returns at once (unless the run is stopping)."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float, interrupt: threading.Event) -> None:
        self.delays.append(seconds)


# a run's own moves up to its return to the queue (the engine lost before it started)
REQUEUED = [(None, "queued"), ("queued", "running"), ("running", "queued")]


@dataclass
class Kit:
    service: RunService
    store: RunStore
    source: Path
    owner: str
    events: list[RunEvent]
    sleeper: RecordingSleeper

    def run(self, data: dict[str, Any], inputs: Mapping[str, Any] | None = None,
            repo: str = "o/r") -> RunRecord:
        submission = self.submit(data, inputs, repo)
        return self.service.execute(submission.run_id)

    def submit(self, data: dict[str, Any], inputs: Mapping[str, Any] | None = None,
               repo: str = "o/r") -> Any:
        flow = flow_from_data(data, path=f"flows/{data['id']}.yml")
        return self.service.submit(flow, inputs or {}, repo=repo, commit=None,
                                   source=self.source, trigger=MANUAL)

    def moves(self, run_id: str) -> list[tuple[str | None, str]]:
        """The run's own status changes, oldest first, as (from, to) values."""
        return [(t.from_status.value if t.from_status else None, t.to_status.value)
                for t in self.store.transitions(run_id) if t.task_id is None]

    def check_ran_once_after_a_requeue(self, run_id: str, task_id: str, log: str) -> None:
        """The run went back to the queue once (:data:`REQUEUED`), then ran to success
        in one attempt of ``task_id`` that printed ``log``."""
        run = self.store.get_run(run_id)
        assert run is not None and run.status is Status.SUCCESS and not run.error
        assert self.moves(run_id) == [*REQUEUED, ("queued", "running"), ("running", "success")]
        [attempt] = self.store.attempts(run_id)
        assert (attempt.attempt, attempt.status, attempt.exit_code) == (1, Status.SUCCESS, 0)
        assert self.log(run_id, task_id) == log

    def log(self, run_id: str, task_id: str, attempt: int = 1) -> str:
        """The attempt's whole log, read through the service's log store."""
        rows = [a for a in self.store.attempts(run_id, task_id) if a.attempt == attempt]
        assert rows and rows[0].log_path and self.service.logs.owns(rows[0])
        return b"".join(self.service.logs.iterate(LogKey.of(rows[0]))).decode()


def make_kit(tmp_path: Path, engine: Any, client: docker.DockerClient,
             secrets: Mapping[str, str] | None = None, max_parallel: int = 4,
             logs: LogStore | None = None) -> Kit:
    source = tmp_path / "repo"
    source.mkdir(exist_ok=True)
    (source / "data.csv").write_text("a,b\n1,2\n")
    owner = f"test-{uuid.uuid4().hex[:10]}"
    store = RunStore(engine, SystemClock())
    events: list[RunEvent] = []
    sleeper = RecordingSleeper()
    service = RunService(store, DockerBackend(client=client, owner=owner), tmp_path / "data",
                         dict(secrets or {}), SystemClock(), max_parallel,
                         listeners=[events.append], owner=owner, sleeper=sleeper, logs=logs)
    return Kit(service, store, source, owner, events, sleeper)


def leftover(client: docker.DockerClient, owner: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"})


def task(task_id: str, *commands: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "image": "busybox:latest", "commands": list(commands), **extra}


def cut_kit(tmp_path: Path, engine: Any, client: docker.DockerClient,
            backend: Callable[[str], Backend], cut: Callable[[], None] | None) -> Kit:
    """A kit whose run service uses ``backend(owner)``; with ``cut``, it is called as
    the first run is claimed (its STARTED event, before any container): the engine
    taken away at that moment."""
    kit = make_kit(tmp_path, engine, client)
    done: list[str] = []

    def listener(event: RunEvent) -> None:
        kit.events.append(event)
        if cut is not None and event.kind is EventKind.STARTED and not done:
            done.append(event.run_id)
            cut()

    kit.service = RunService(kit.store, backend(kit.owner), tmp_path / "data", {},
                             SystemClock(), listeners=[listener], owner=kit.owner,
                             sleeper=kit.sleeper)
    return kit


_RUNNER = """
import sys
from pathlib import Path
import docker
from runner.backends import make_backend
from runner.clock import SystemClock
from runner.running.service import RunService
from runner.state.db import connect
from runner.state.store import RunStore
url, data_dir, owner, run_id, name = sys.argv[1:]
store = RunStore(connect(url), SystemClock())
backend = make_backend(name, owner, client=docker.from_env())
RunService(store, backend, Path(data_dir), {}, SystemClock(), owner=owner).execute(run_id)
"""


def kill_runner_mid_task(store: RunStore, data_dir: Path, owner: str, run_id: str,
                         backend: str, timeout: float) -> None:
    """Execute ``run_id`` in a child process on ``backend`` and SIGKILL it once its
    task ``a`` has started (its attempt has a handle): a runner gone without a word,
    its container or service left behind for reconciliation."""
    url = store.engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, url, str(data_dir), owner, run_id, backend],
        cwd=Path(__file__).parents[2], env=os.environ.copy())
    try:
        wait_until(lambda: any(a.handle for a in store.attempts(run_id, "a")), timeout,
                   "the runner to start task a")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
