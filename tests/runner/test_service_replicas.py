"""Several replicas (run services with their own ids) on one PostgreSQL database and
the real Docker engine: a cancel sent to a replica that does not execute the run,
a flow's concurrency limit held across replicas, and the adoption of a dead
replica's runs that leaves a live replica's runs and containers alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import sqlalchemy as sa
from enginekit import MANUAL, leftover, task
from sqlalchemy.engine import Engine

from runner.backends.base import LABEL_RUN
from runner.backends.docker_backend import DockerBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.service import Listener, RunService, Submission
from runner.state.locks import FlowLocks
from runner.state.records import EventKind, RunRecord, Status
from runner.state.run_tables import run_transitions
from runner.state.store import RunStore
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres,
              pytest.mark.parametrize("db_engine", ["postgres"], indirect=True)]

_CHILD = """
import sys
from pathlib import Path
import docker
from runner.backends.base import LABEL_RUN
from runner.backends.docker_backend import DockerBackend
from runner.clock import SystemClock
from runner.state.db import connect
from runner.running.service import RunService
from runner.state.store import RunStore
url, data_dir, owner, replica, run_id = sys.argv[1:]
store = RunStore(connect(url), SystemClock())
backend = DockerBackend(client=docker.from_env(), owner=owner)
RunService(store, backend, Path(data_dir), {}, SystemClock(), owner=owner,
           replica=replica).execute(run_id)
"""


@dataclass
class Cluster:
    """Replicas sharing one database, one data dir and one installation label."""

    engine: Engine
    client: docker.DockerClient
    data_dir: Path
    source: Path
    owner: str
    store: RunStore

    def replica(self, name: str, listeners: Iterable[Listener] = ()) -> RunService:
        return RunService(RunStore(self.engine, SystemClock()),
                          DockerBackend(client=self.client, owner=self.owner), self.data_dir,
                          {}, SystemClock(), owner=self.owner, replica=name,
                          listeners=listeners)

    def submit(self, service: RunService, data: dict[str, Any]) -> Submission:
        flow = flow_from_data(data, path=f"flows/{data['id']}.yml")
        return service.submit(flow, {}, repo="o/r", commit=None, source=self.source,
                              trigger=MANUAL)

    def run(self, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        assert run is not None
        return run

    def final(self, run_id: str, timeout: float = 30) -> RunRecord:
        return wait_until(lambda: (r := self.run(run_id)).status.terminal and r, timeout,
                          f"run {run_id} to end")


@pytest.fixture
def cluster(tmp_path: Path, db_engine: Engine, docker_client: docker.DockerClient,
            busybox_image: str) -> Iterator[Cluster]:
    source = tmp_path / "repo"
    source.mkdir()
    (source / "data.csv").write_text("a,b\n")
    owner = f"test-{uuid.uuid4().hex[:10]}"
    yield Cluster(db_engine, docker_client, tmp_path / "data", source, owner,
                  RunStore(db_engine, SystemClock()))
    for container in leftover(docker_client, owner):
        container.remove(force=True)


def _sleeper(flow_id: str = "long") -> dict[str, Any]:
    return {"id": flow_id, "tasks": [task("t", "sleep 60")]}


def test_a_cancel_sent_to_another_replica_ends_the_run_and_its_container(
    cluster: Cluster,
) -> None:
    a, b = cluster.replica("replica-a"), cluster.replica("replica-b")
    a.start(workers=1)
    try:
        run_id = cluster.submit(b, _sleeper()).run_id  # queued through B, executed by A
        wait_until(lambda: any(t.handle for t in cluster.store.attempts(run_id)), 30,
                   "replica A to start the task's container")
        assert cluster.run(run_id).owner == "replica-a"
        assert b.cancel(run_id)  # B does not execute it: the request is recorded
        run = cluster.final(run_id, 20)
    finally:
        a.stop()
    assert run.status is Status.CANCELLED and run.cancel_requested_at is not None
    assert [t.status for t in cluster.store.task_rows(run_id)] == [Status.CANCELLED]
    assert leftover(cluster.client, cluster.owner) == []
    assert not b.cancel(run_id)  # ended: nothing left to cancel


def test_a_queued_run_is_cancelled_by_any_replica_at_once(cluster: Cluster) -> None:
    a, b = cluster.replica("replica-a"), cluster.replica("replica-b")
    run_id = cluster.submit(a, _sleeper()).run_id
    assert b.cancel(run_id)
    assert cluster.run(run_id).status is Status.CANCELLED
    assert a.execute(run_id).status is Status.CANCELLED  # A never starts it


def _most_running(engine: Engine, run_ids: set[str]) -> int:
    """The most runs of ``run_ids`` running at once, replaying their run-level
    transitions in the order the database recorded them."""
    query = (sa.select(run_transitions.c.run_id, run_transitions.c.from_status,
                       run_transitions.c.to_status)
             .where(run_transitions.c.task_id.is_(None)).order_by(run_transitions.c.id))
    running, most = 0, 0
    with engine.connect() as conn:
        for row in conn.execute(query):
            if row.run_id not in run_ids:
                continue
            running += (row.to_status == "running") - (row.from_status == "running")
            most = max(most, running)
    return most


def _submit_everywhere(cluster: Cluster, replicas: list[RunService], data: dict[str, Any],
                       each: int) -> list[Submission]:
    """``each`` submissions on every replica, all released at once."""
    gate, results = threading.Barrier(len(replicas) * each), []

    def submit(service: RunService) -> None:
        gate.wait()
        results.append(cluster.submit(service, data))
    threads = [threading.Thread(target=submit, args=(s,)) for s in replicas for _ in range(each)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_limit_of_one_holds_across_replicas_and_every_queued_run_runs(
    cluster: Cluster,
) -> None:
    replicas = [cluster.replica("replica-a"), cluster.replica("replica-b")]
    flow = {"id": "one-at-a-time", "concurrency": {"limit": 1, "policy": "queue"},
            "tasks": [task("t", "true")]}
    submitted = _submit_everywhere(cluster, replicas, flow, 3)
    assert [s.status for s in submitted] == [Status.QUEUED] * 6
    for service in replicas:
        service.start(workers=3)  # every worker of both replicas races for the queue
    try:
        runs = [cluster.final(s.run_id, 120) for s in submitted]
    finally:
        for service in replicas:
            service.stop()
    assert [r.status for r in runs] == [Status.SUCCESS] * 6
    assert _most_running(cluster.engine, {r.id for r in runs}) == 1
    assert {r.owner for r in runs} <= {"replica-a", "replica-b"}


def test_a_limit_of_one_with_skip_admits_one_run_across_replicas(cluster: Cluster) -> None:
    replicas = [cluster.replica("replica-a"), cluster.replica("replica-b")]
    flow = {"id": "only-one", "concurrency": {"limit": 1, "policy": "skip"},
            "tasks": [task("t", "true")]}
    submitted = _submit_everywhere(cluster, replicas, flow, 4)
    assert sorted(s.status for s in submitted) == [Status.QUEUED] + [Status.SKIPPED] * 7


def test_a_replica_claims_a_limited_flows_run_only_under_the_flows_lock(
    cluster: Cluster,
) -> None:
    flow = {"id": "locked", "concurrency": {"limit": 1, "policy": "queue"},
            "tasks": [task("t", "true")]}
    a = cluster.replica("replica-a")
    run_id = cluster.submit(a, flow).run_id
    waiting = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    try:
        with FlowLocks(cluster.engine).hold("o/r", "locked"), cluster.engine.connect() as conn:
            a.start(workers=1)  # another replica holds the flow: A's claim must wait
            wait_until(lambda: conn.execute(waiting).scalar() == 1, 20,
                       "replica A's claim to wait for the flow's lock")
            assert cluster.run(run_id).status is Status.QUEUED
        assert cluster.final(run_id).status is Status.SUCCESS
    finally:
        a.stop()


def _kill_replica_mid_task(cluster: Cluster, run_id: str, replica: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, cluster.engine.url.render_as_string(hide_password=False),
         str(cluster.data_dir), cluster.owner, replica, run_id],
        cwd=Path(__file__).parents[2], env=os.environ.copy())
    try:
        wait_until(lambda: any(a.handle for a in cluster.store.attempts(run_id)), 30,
                   f"replica {replica} to start the task")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_adopting_a_dead_replica_leaves_a_live_replicas_run_and_container_alone(
    cluster: Cluster,
) -> None:
    quick = {"id": "quick", "tasks": [task("t", "sleep 2", "echo done")]}
    adopter, live = cluster.replica("replica-b"), cluster.replica("replica-c")
    dead_run = cluster.submit(adopter, quick).run_id
    _kill_replica_mid_task(cluster, dead_run, "replica-a")
    live_run = cluster.submit(live, _sleeper()).run_id
    live_thread = threading.Thread(target=live.execute, args=(live_run,))
    live_thread.start()
    try:
        wait_until(lambda: any(a.handle for a in cluster.store.attempts(live_run)), 30,
                   "the live replica to start its task")
        other = cluster.replica("replica-d")  # told of the same dead replica: takes nothing
        assert sorted(adopter.adopt(["replica-a"], block=True)
                      + other.adopt(["replica-a"], block=True)) == [dead_run]
        done = cluster.run(dead_run)
        assert (done.status, done.owner) == (Status.SUCCESS, "replica-b")
        still = cluster.run(live_run)
        assert (still.status, still.owner) == (Status.RUNNING, "replica-c")
        assert [c.labels[LABEL_RUN] for c in leftover(cluster.client, cluster.owner)
                ] == [live_run]  # the live replica's container was not reaped
    finally:
        live.cancel(live_run)
        live_thread.join(30)
    assert cluster.run(live_run).status is Status.CANCELLED


def test_a_replica_thought_dead_leaves_the_run_to_its_adopter(cluster: Cluster) -> None:
    """A stalled replica (its lease ran out, another adopted its run) carries on: it
    must start no further attempt, record no end and remove nothing."""
    heard: dict[str, list[Status | None]] = {"replica-a": [], "replica-b": []}

    def replica(name: str) -> RunService:
        return cluster.replica(name, [lambda e: heard[name].append(e.status)
                                      if e.kind is EventKind.FINISHED else None])

    a, b = replica("replica-a"), replica("replica-b")
    flow = {"id": "two", "tasks": [task("first", "sleep 3", "echo one"),
                                   task("second", "echo two", needs=["first"])]}
    run_id = cluster.submit(a, flow).run_id
    a.start(workers=1)
    try:
        wait_until(lambda: any(t.handle for t in cluster.store.attempts(run_id)), 30,
                   "replica A to start the first task's container")
        assert b.adopt(["replica-a"]) == [run_id]  # as if A had missed its lease
        run = cluster.final(run_id, 40)
        wait_until(lambda: run_id not in a._executions, 20, "replica A to let the run go")
    finally:
        a.stop()
    assert (run.status, run.owner) == (Status.SUCCESS, "replica-b")
    attempts = [(t.task_id, t.attempt) for t in cluster.store.attempts(run_id)]
    assert sorted(attempts) == [("first", 1), ("second", 1)]  # nothing ran twice
    assert heard == {"replica-a": [], "replica-b": [Status.SUCCESS]}
    assert not leftover(cluster.client, cluster.owner)
