"""Recording fakes shared by the bot's handler tests, and real-shaped payloads.

GitHub is :class:`bot.github.local.LocalGitHub` (every call recorded as
``(method, args)``), the payloads are :mod:`bot.github.payloads`' (both re-exported
here for brevity); ``FakeFlowSource`` serves flow files per commit;
``make_services`` wires them over a real database.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.github.interfaces import GitHubClients
from bot.github.local import LocalGitHub, LocalRepoClient
from bot.github.payloads import (
    issue_comment_event,
    ping_event,
    pull_request_event,
    push_event,
    repository,
    user,
    with_installation,
)
from bot.intake.deliveries import DeliveryStore
from bot.services import Services
from bot.settings import Settings
from runner.clock import Clock
from runner.running.inputs import coerce_inputs
from runner.running.service import Submission
from runner.scheduling.registry import Registry
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from runner.state.records import Status
from runner.state.store import RunStore

with warnings.catch_warnings():
    # starlette deprecates its httpx-based client in favour of an unreleased one
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as _StarletteTestClient


class TestClient(_StarletteTestClient):
    """Starlette's test client, calling from the loopback address as a browser on the
    bot's own machine does (without GitHub sign-in, flowbot answers only loopback)."""

    __test__ = False  # not a test class for pytest

    def __init__(self, app: Any, *args: Any, client: tuple[str, int] = ("127.0.0.1", 50000),
                 **kwargs: Any) -> None:
        super().__init__(app, *args, client=client, **kwargs)

__all__ = ["LocalGitHub", "LocalRepoClient", "TestClient", "issue_comment_event", "ping_event",
           "pull_request_event", "push_event", "repository", "user", "with_installation"]


@dataclass
class FakeFlowSource:
    """Flow files by commit sha; records which repositories were mirrored."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    mirrored: list[tuple[str, str]] = field(default_factory=list)

    def mirror(self, full_name: str, clone_url: str, want: str | None = None,
               token: str | None = None) -> Path:
        self.mirrored.append((full_name, clone_url))
        return Path("/nonexistent") / full_name

    def read_flows(self, mirror: Path, sha: str) -> dict[str, bytes]:
        return dict(self.commits[sha])


@dataclass
class FakeRuns:
    """A run service that records submissions in the real run store and runs nothing;
    inputs are checked by the runner's real ``coerce_inputs``."""

    store: RunStore
    submitted: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def submit(self, flow: Any, inputs: Mapping[str, Any], *, repo: str, commit: str | None,
               source: Path | None, trigger: Any, request_key: str | None = None) -> Any:
        values = coerce_inputs(flow.inputs, dict(inputs))
        run, new = self.store.create_run_once(flow, repo=repo, commit=commit, trigger=trigger,
                                              inputs=values, request_key=request_key)
        if not new:
            return Submission(run.id, run.status)  # a replayed request
        self.submitted.append({"run_id": run.id, "flow": flow.id, "inputs": values,
                               "commit": commit, "source": source, "trigger": trigger})
        return Submission(run.id, Status.QUEUED)

    def cancel(self, run_id: str) -> bool:
        self.cancelled.append(run_id)
        return self.store.set_run_status(run_id, Status.CANCELLED, expect=[Status.QUEUED])

    def finish(self, run_id: str, status: Status, failed_task: str | None = None) -> None:
        """Move a run to its end as the engine would (tasks included)."""
        self.store.set_run_status(run_id, Status.RUNNING, expect=[Status.QUEUED])
        for row in self.store.task_rows(run_id):
            task_status = status if row.task_id == failed_task or failed_task is None \
                else Status.SUCCESS
            self.store.set_task_status(run_id, row.task_id, task_status,
                                       exit_code=0 if task_status is Status.SUCCESS else 1,
                                       attempts=1)
        self.store.set_run_status(run_id, status, failed_task=failed_task)


def make_services(engine: Engine, clock: Clock, *, repos: tuple[str, ...] = ("*/*",),
                  runs: Any = None, data_dir: Path = Path("/tmp"),
                  github: GitHubClients | None = None) -> Services:
    settings = Settings(data_dir=data_dir, webhook_secret="s3cret", repos=repos,
                        public_url="http://flowbot.test")
    from bot.handlers import build_router
    from bot.handlers.run_reporting import RunReporting
    from bot.handlers.run_reports import RunReports
    from bot.services import RepoClients

    store, deliveries = RunStore(engine, clock), DeliveryStore(engine, clock)
    wake = threading.Event()  # set by pause and resume
    clients = RepoClients(github or LocalGitHub(), deliveries)
    return Services(
        settings=settings, clock=clock, engine=engine, deliveries=deliveries,
        registry=Registry(engine, clock), schedules=SqlScheduleStore(engine, clock, wake=wake),
        store=store, wake_scheduler=wake,
        clients=clients, repos=FakeFlowSource(),
        runs=runs if runs is not None else FakeRuns(store),
        reporting=RunReporting(settings, store, clients, RunReports(engine)),
        router=build_router(),
    )

