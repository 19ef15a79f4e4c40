"""`flowbot run` is a short-lived replica: on a PostgreSQL database shared with a
real `flowbot serve`, a `flowbot run` SIGKILLed mid-run is adopted by the serving
replica (its container followed to the end and removed), and a cancel asked of
another replica reaches it. On SQLite its replica row is stopped at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx
import pytest
from sqlalchemy import select, text

from bot.cli import main
from runner.backends.base import LABEL_OWNER, LABEL_RUN
from runner.backends.process_backend import ProcessBackend
from runner.clock import SystemClock
from runner.running.service import RunService, installation_for
from runner.state.db import connect
from runner.state.notify import RUNS, Notifier
from runner.state.records import Status
from runner.state.replicas import replicas as replicas_table
from runner.state.store import RunStore
from tests.bot.replica_kit import (  # noqa: F401  (fixtures)
    FAST_LEASES,
    Replicas,
    containers,
    replica_db,
    replicas,
)
from tests.bot.serve_kit import SLOW, WAIT_SECONDS
from tests.polling import wait_until

ROOT = Path(__file__).parents[2]
_MAIN = "import sys; from bot.cli import main; sys.exit(main())"
HOLD = """id: hold
tasks:
  - {id: wait, image: busybox:latest, network: none, commands: ['echo waiting', 'sleep 300']}
"""


class LocalRun:
    """`flowbot run FLOW` as a child process on ``db_url`` and ``data_dir``."""

    def __init__(self, tmp_path: Path, flow: str, db_url: str, data_dir: Path) -> None:
        folder = tmp_path / "local"
        (folder / "flows").mkdir(parents=True)
        flow_file = folder / "flows" / "flow.yml"
        flow_file.write_text(flow)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBOT_")}
        env.update({"FLOWBOT_DATABASE_URL": db_url, "FLOWBOT_DATA_DIR": str(data_dir),
                    "PYTHONUNBUFFERED": "1", **FAST_LEASES})
        self.proc = subprocess.Popen([sys.executable, "-c", _MAIN, "run", str(flow_file)],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.seen = b""

    def wait_for(self, marker: bytes) -> bytes:
        """Read its output until ``marker``; everything read so far."""
        assert self.proc.stdout is not None
        while marker not in self.seen:
            line = self.proc.stdout.readline()
            assert line, f"flowbot run ended before {marker!r}: {self.seen.decode()}"
            self.seen += line
        return self.seen

    def run_id(self) -> str:
        """The run's id, from its ``run <id>: flow ...`` line."""
        line = next(x for x in self.wait_for(b": flow ").decode().splitlines()
                    if x.startswith("run ") and ": flow " in x)
        return line.split()[1].rstrip(":")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def local_runs() -> Iterator[Callable[..., LocalRun]]:
    started: list[LocalRun] = []

    def start(*args: object) -> LocalRun:
        started.append(LocalRun(*args))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for one in started:
        one.close()


def _replica_row(group: Replicas, replica_id: str) -> dict[str, object]:
    with group.engine.connect() as conn:
        row = conn.execute(select(replicas_table)
                           .where(replicas_table.c.id == replica_id)).mappings().one()
    return dict(row)


@pytest.mark.docker
@pytest.mark.postgres
@pytest.mark.replicas
def test_a_killed_flowbot_run_is_adopted_by_a_serving_replica(
    tmp_path: Path, replicas: Callable[..., Replicas],  # noqa: F811
    local_runs: Callable[..., LocalRun], docker_client: docker.DockerClient,
) -> None:
    group = replicas(count=1)
    local = local_runs(tmp_path, SLOW, group.db_url, group.data_dir)
    run_id = local.run_id()
    local.wait_for(b"| start")  # the task's container is running
    owner = group.owner_of(run_id)
    assert owner is not None and owner.split("-")[-2] == str(local.proc.pid)
    assert _replica_row(group, owner)["stopped_at"] is None  # registered, beating
    found = docker_client.containers.list(filters={"label": f"{LABEL_RUN}={run_id}"})
    assert [c.labels[LABEL_OWNER] for c in found] == [installation_for(group.db_url)]

    local.proc.send_signal(signal.SIGKILL)  # no chance to clean up, hand over or mark
    local.close()
    final = group.ended(run_id)
    assert final.status is Status.SUCCESS, (final.error, group.log_tail())
    adopter = _replica_row(group, owner)["adopted_by"]
    assert adopter and adopter != owner and group.owner_of(run_id) == adopter
    log = httpx.get(f"{group[0].url}/runs/{run_id}/logs/nap", timeout=5).text
    assert "start" in log and "woke" in log  # followed to the end
    wait_until(lambda: not containers(run_id), WAIT_SECONDS, "the container to be removed",
               interval=0.2)


@pytest.mark.docker
@pytest.mark.postgres
@pytest.mark.replicas
def test_a_flowbot_run_stalled_past_its_lease_leaves_the_run_to_its_adopter(
    tmp_path: Path, replicas: Callable[..., Replicas],  # noqa: F811
    local_runs: Callable[..., LocalRun],
) -> None:
    group = replicas(count=1)
    local = local_runs(tmp_path, SLOW, group.db_url, group.data_dir)
    run_id = local.run_id()
    local.wait_for(b"| start")
    owner = group.owner_of(run_id)
    assert owner is not None
    local.proc.send_signal(signal.SIGSTOP)  # alive, but silent past its lease
    wait_until(lambda: _replica_row(group, owner)["adopted_by"], WAIT_SECONDS,
               "the stalled flowbot run to be adopted", interval=0.2)
    # the lease row names the adopter at once; the run's owner column follows a moment later
    adopter = _replica_row(group, owner)["adopted_by"]
    local.proc.send_signal(signal.SIGCONT)
    out, _ = local.proc.communicate(timeout=WAIT_SECONDS)
    said = (local.seen + out).decode()
    final = group.ended(run_id)
    assert final.status is Status.SUCCESS, (final.error, said, group.log_tail())
    # it records nothing once adopted: it either finds the run still being followed by
    # its adopter and says so, or finds it already ended and reports that end
    if local.proc.returncode == 1:
        assert f"run {run_id} is executed by replica {adopter}, not this process" in said
    else:
        assert local.proc.returncode == 0 and f"run {run_id} success" in said, said
    assert group.owner_of(run_id) == adopter != owner
    wait_until(lambda: not containers(run_id), WAIT_SECONDS, "the container to be removed",
               interval=0.2)


@pytest.mark.docker
@pytest.mark.postgres
@pytest.mark.replicas
def test_a_cancel_asked_of_another_replica_reaches_flowbot_run(
    tmp_path: Path, replicas: Callable[..., Replicas],  # noqa: F811
    local_runs: Callable[..., LocalRun],
) -> None:
    group = replicas(count=1)
    local = local_runs(tmp_path, HOLD, group.db_url, group.data_dir)
    run_id = local.run_id()
    local.wait_for(b"| waiting")
    elsewhere = RunService(group.store, ProcessBackend("elsewhere"), tmp_path / "elsewhere",
                           {}, SystemClock(), replica="elsewhere")
    assert elsewhere.cancel(run_id)  # recorded: the run is flowbot run's
    out, _ = local.proc.communicate(timeout=WAIT_SECONDS)
    assert local.proc.returncode == 130, (local.seen + out).decode()
    assert group.ended(run_id).status is Status.CANCELLED
    wait_until(lambda: not containers(run_id), WAIT_SECONDS, "the container to be removed",
               interval=0.2)
    owner = group.owner_of(run_id)
    assert owner is not None and _replica_row(group, owner)["stopped_at"] is not None


@pytest.mark.docker
@pytest.mark.postgres
def test_flowbot_run_notifies_serving_replicas_and_listens_for_cancels(
    tmp_path: Path, replica_db: str, local_runs: Callable[..., LocalRun],  # noqa: F811
) -> None:
    engine = connect(replica_db)
    RunStore(engine, SystemClock())  # migrated, as a serving replica would have
    heard: list[str] = []
    notifier = Notifier(engine)
    notifier.on(RUNS, heard.append)
    notifier.start()
    try:
        wait_until(lambda: notifier.backend_pid is not None, WAIT_SECONDS, "the listener")
        heard.clear()  # the look every listener takes once connected
        local = local_runs(tmp_path, HOLD, replica_db, tmp_path / "data")
        local.wait_for(b"| waiting")
        wait_until(lambda: heard, WAIT_SECONDS, "the queued run's notification")
        with engine.connect() as conn:
            listening = conn.execute(text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid NOT IN (pg_backend_pid(), :mine) AND query LIKE 'LISTEN %'"),
                {"mine": notifier.backend_pid}).scalars().all()
        assert listening == ['LISTEN "flowbot_cancels"'], listening
        heard.clear()
        local.proc.send_signal(signal.SIGINT)  # Ctrl-C: cancelled, and its end notified
        out, _ = local.proc.communicate(timeout=WAIT_SECONDS)
        assert local.proc.returncode == 130, (local.seen + out).decode()
        wait_until(lambda: heard, WAIT_SECONDS, "the ended run's notification")
    finally:
        notifier.stop()
        engine.dispose()


def test_on_sqlite_flowbot_run_is_a_replica_stopped_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [k for k in os.environ if k.startswith("FLOWBOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FLOWBOT_DATA_DIR", str(tmp_path / "data"))
    flow = tmp_path / "flows" / "hello.yml"
    flow.parent.mkdir()
    flow.write_text("id: hello\ntasks:\n  - {id: say, image: busybox:latest, "
                    "commands: ['echo hello']}\n")
    assert main(["run", str(flow), "--backend", "process"]) == 0, capsys.readouterr()
    engine = connect(f"sqlite:///{tmp_path / 'data' / 'flowbot.db'}")
    try:
        run = RunStore(engine, SystemClock()).list_runs()[0]
        with engine.connect() as conn:
            rows = conn.execute(select(replicas_table)).mappings().all()
    finally:
        engine.dispose()
    assert [r["id"] for r in rows] == [run.owner]
    assert rows[0]["stopped_at"] is not None and run.status is Status.SUCCESS
