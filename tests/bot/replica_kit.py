"""Several ``flowbot serve`` replicas as real processes on ONE PostgreSQL database
(a fresh one per test) sharing ONE data directory, the fake GitHub over HTTP and
the real Docker engine: start them, send signed webhooks to any of them, SIGKILL
one and start it again, and read back what they stored.

Built on :mod:`tests.bot.serve_kit` (one process) and :mod:`tests.bot.e2e_support`
(the origin repository, the webhook secret)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.intake.deliveries import DeliveryStore
from runner.backends.base import LABEL_RUN
from runner.clock import SystemClock
from runner.state.db import connect
from runner.state.records import RunRecord
from runner.state.run_tables import runs as runs_table
from runner.state.store import RunStore
from tests.bot.e2e_support import Origin, run_end
from tests.bot.serve_kit import WAIT_SECONDS, Served, statuses
from tests.conftest import fresh_database
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import issue_comment_event, push_event
from tests.polling import wait_until

REPLICAS = 3
# short leases so a SIGKILLed replica's work is adopted within seconds
FAST_LEASES = {"FLOWBOT_REPLICA_HEARTBEAT_SECONDS": "1", "FLOWBOT_REPLICA_LEASE_SECONDS": "4",
               "FLOWBOT_WORKERS": "2", "FLOWBOT_MAX_PARALLEL_TASKS": "4"}


@pytest.fixture
def replica_db(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test only (on the server the
    session's ``postgres_url`` lives on), dropped after it."""
    with fresh_database(postgres_url, f"flowbot_replicas_{uuid.uuid4().hex[:12]}") as url:
        yield url


class Replicas:
    """``count`` replicas of ``flowbot serve``; ``extra`` settings for all of them."""

    def __init__(self, tmp_path: Path, fake: FakeGitHub, db_url: str, count: int = REPLICAS,
                 extra: Mapping[str, str] | None = None) -> None:
        self.fake, self.db_url = fake, db_url
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.origin = Origin(tmp_path / "origin")
        self.env = {"FLOWBOT_DATABASE_URL": db_url, **FAST_LEASES, **(extra or {})}
        self.members: list[Served] = []
        self.gone: list[Served] = []  # killed processes (their logs are closed at the end)
        self.members.append(Served(self.data_dir, fake, self.env))  # the first one migrates
        rest = [Served(self.data_dir, fake, self.env, wait=False) for _ in range(count - 1)]
        for one in rest:
            one.wait_healthy()
        self.members.extend(rest)
        self.engine: Engine = connect(db_url)
        self.store = RunStore(self.engine, SystemClock())
        self.deliveries = DeliveryStore(self.engine, SystemClock())

    def __getitem__(self, index: int) -> Served:
        return self.members[index]

    def __len__(self) -> int:
        return len(self.members)

    # -- processes ---------------------------------------------------------

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index``: no chance to clean up, release or report."""
        self.members[index].kill()
        self.gone.append(self.members[index])

    def restart(self, index: int) -> Served:
        """Start replica ``index`` again (a new process, so a new replica id)."""
        self.members[index] = Served(self.data_dir, self.fake, self.env)
        return self.members[index]

    def stop(self) -> None:
        """Stop every replica at once (each finishes its own shutdown)."""
        everyone = [*self.members, *self.gone]
        with ThreadPoolExecutor(len(everyone)) as pool:
            list(pool.map(Served.stop, everyone))
        self.engine.dispose()

    def index_of_pid(self, pid: int) -> int | None:
        return next((i for i, one in enumerate(self.members) if one.proc.pid == pid), None)

    # -- the repository and webhooks ---------------------------------------

    def sync(self, files: dict[str, str | bytes | None], via: int = 0) -> str:
        """Commit ``files`` to the default branch, push to replica ``via`` and wait
        for the sync's success status; returns the commit."""
        sha = self.origin.commit(files, "flows")
        pushed = self.members[via].deliver(
            "push", push_event(sha, repo=FAKE_REPO, clone_url=str(self.origin.path)))
        assert pushed == 202
        wait_until(lambda: "success" in statuses(self.fake, sha, "flowbot/sync"), WAIT_SECONDS,
                   "the sync status", interval=0.1)
        return sha

    def comment_event(self, body: str, login: str = "writer",
                      issue: int | None = None) -> tuple[int, dict[str, Any]]:
        """A comment that exists on the fake GitHub (on a new issue unless given) and
        its webhook payload; returns (issue number, payload)."""
        number = issue if issue is not None else self.fake.add_issue(FAKE_REPO, "Replicas")
        repo = self.fake.state.repo(*FAKE_REPO.split("/"))
        assert repo is not None
        made = self.fake.state.add_comment(repo, number, body, login)
        return number, issue_comment_event(body, login=login, number=number, repo=FAKE_REPO,
                                           comment_id=made.id, clone_url=str(self.origin.path))

    def comment(self, via: int, body: str, login: str = "writer",
                issue: int | None = None) -> int:
        """Comment ``body`` and send its webhook to replica ``via``; returns the issue."""
        number, payload = self.comment_event(body, login, issue)
        assert self.members[via].deliver("issue_comment", payload) == 202
        return number

    def at_once(self, sends: list[Callable[[], int]]) -> list[int]:
        """Send several webhooks concurrently; their HTTP answers in order."""
        with ThreadPoolExecutor(len(sends)) as pool:
            return list(pool.map(lambda send: send(), sends))

    # -- what they stored --------------------------------------------------

    def runs_of(self, flow_id: str) -> list[RunRecord]:
        return self.store.list_runs(flow_id=flow_id, limit=100_000)

    def runs_ended(self, flow_id: str, count: int,
                   timeout: float = WAIT_SECONDS) -> list[RunRecord]:
        """Wait for ``count`` runs of ``flow_id``, every one ended; newest first."""
        def ended() -> list[RunRecord] | None:
            runs = self.runs_of(flow_id)
            return runs if len(runs) == count and all(r.status.terminal for r in runs) else None
        return wait_until(ended, timeout, f"{count} runs of {flow_id} to end", interval=0.2)

    def owner_of(self, run_id: str) -> str | None:
        """The replica id stamped on the run by its claim (runs.owner)."""
        with self.engine.connect() as conn:
            return conn.execute(select(runs_table.c.owner)
                                .where(runs_table.c.id == run_id)).scalar_one_or_none()

    def running_on(self, run_id: str) -> int:
        """Wait for the run to be claimed with a container started; the index of
        the replica executing it (replica ids are host-pid-random)."""
        def owner() -> int | None:
            run = self.store.get_run(run_id)
            owner = self.owner_of(run_id)
            if run is None or owner is None or not containers(run_id):
                return None
            index = self.index_of_pid(int(owner.rsplit("-", 2)[1]))
            return None if index is None else index + 1  # truthy even for replica 0
        return wait_until(owner, WAIT_SECONDS, f"run {run_id} to run on a replica",
                          interval=0.1) - 1

    def first_run(self, flow_id: str) -> str:
        return wait_until(lambda: next((r.id for r in self.runs_of(flow_id)), None),
                          WAIT_SECONDS, f"a run of {flow_id}", interval=0.1)

    def ended(self, run_id: str, timeout: float = WAIT_SECONDS) -> RunRecord:
        return wait_until(lambda: run_end(self.store, run_id), timeout, f"run {run_id} to end",
                          interval=0.1)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of every replica's output (for failure messages)."""
        tails = []
        for path in sorted(self.data_dir.glob("serve-*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(tails)


def containers(run_id: str) -> list[str]:
    """Ids of the Docker containers (running or not) labelled with the run."""
    client = docker.from_env()
    try:
        found = client.api.containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
        return [str(c["Id"]) for c in found]  # listed, not inspected: one may go meanwhile
    finally:
        client.close()


@pytest.fixture
def replicas(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str,
             replica_db: str) -> Iterator[Callable[..., Replicas]]:
    """Start replicas with ``replicas(count=3, extra={...})``; all stop after the test."""
    started: list[Replicas] = []
    fake_github.add_collaborator(FAKE_REPO, "writer", "write")

    def start(count: int = REPLICAS, extra: Mapping[str, str] | None = None) -> Replicas:
        started.append(Replicas(tmp_path, fake_github, replica_db, count, extra))
        return started[-1]

    yield start
    for group in started:
        group.stop()
