"""What handlers, workers and pages are given: one :class:`Services` object.

Handlers only see the narrow interfaces declared here (a GitHub client
factory, a flow reader, a run submitter, a run reporter); :func:`bot.runtime.build_runtime`
wires the real implementations from :class:`~bot.settings.Settings` and builds
``Services`` complete in one step; tests pass recording fakes (``tests/fakes.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from bot.github.interfaces import GitHubClients, RepoClient
from bot.intake.deliveries import DeliveryStore
from bot.intake.router import Router
from bot.settings import Settings
from bot.web.metrics import Metrics
from runner.clock import Clock
from runner.model.flows import Flow
from runner.running.logstore import FileLogs, LogStore
from runner.running.service import Submission
from runner.scheduling.registry import Registry
from runner.scheduling.schedule_store import ScheduleStore
from runner.state.records import RunRecord, Trigger
from runner.state.replicas import ReplicaRegistry
from runner.state.store import RunStore


class FlowSource(Protocol):
    """Repository content: cached mirrors, flows read at a commit, exports for runs."""

    def mirror(self, full_name: str, clone_url: str, want: str | None = None,
               token: str | None = None) -> Path:
        """The mirror of ``full_name``, cloned if absent, fetched if ``want`` is missing."""

    def read_flows(self, mirror: Path, sha: str) -> dict[str, bytes]:
        """``flows/*.yml`` at ``sha`` by repository path, without a work tree."""


class RunSubmitter(Protocol):
    """The part of the run service the bot drives."""

    def submit(
        self, flow: Flow, inputs: Mapping[str, Any], *, repo: str, commit: str | None,
        source: Path, trigger: Trigger, request_key: str | None = None,
    ) -> Submission:
        """Queue a run; raises InputError for bad inputs (nothing recorded). A
        ``request_key`` used before answers with the run it started."""

    def cancel(self, run_id: str) -> bool:
        """Cancel run ``run_id``; False if it is unknown or already over."""


class RunReporter(Protocol):
    """Where runs report to GitHub (:class:`bot.handlers.run_reporting.RunReporting`)."""

    def report(self, run_id: str) -> None:
        """Bring everything ``run_id`` reports to up to date with its current state."""

    def report_to_reply(self, run: RunRecord, installation_id: int | None, number: int,
                        reply_id: int) -> None:
        """Report ``run`` in reply comment ``reply_id`` on issue or PR ``number``
        from now on, starting now."""


def run_page_url(settings: Settings, run_id: str) -> str:
    """The address of run ``run_id``'s page."""
    return f"{settings.public_url.rstrip('/')}/runs/{run_id}"


class RepoClients:
    """GitHub clients by repository, each repository's App installation remembered
    (from its webhooks, or the deliveries table) for the reports that come later."""

    def __init__(self, github: GitHubClients, deliveries: DeliveryStore) -> None:
        self.github, self._deliveries = github, deliveries
        self._installations: dict[str, int] = {}  # repo -> App installation

    def client(self, repo: str, installation_id: int | None) -> RepoClient:
        """The GitHub client for ``repo``; remembers the installation for later reports."""
        return self.github.for_repo(repo, self._installation(repo, installation_id))

    def git_token(self, repo: str, installation_id: int | None) -> str:
        """The credential to clone ``repo`` with ("" for none)."""
        return self.github.git_token(self._installation(repo, installation_id))

    def _installation(self, repo: str, given: int | None) -> int | None:
        if given is not None:
            self._installations[repo] = given
            return given
        if repo not in self._installations:
            found = self._deliveries.installation_for(repo)
            if found is None:
                return None  # token auth, or no webhook from an App installation yet
            self._installations[repo] = found
        return self._installations[repo]


@dataclass
class Services:
    """Everything the app, the workers and the handlers use."""

    settings: Settings
    clock: Clock
    engine: Engine
    deliveries: DeliveryStore
    registry: Registry
    schedules: ScheduleStore
    store: RunStore
    clients: RepoClients
    repos: FlowSource
    runs: RunSubmitter
    reporting: RunReporter
    router: Router[Services]
    wake_scheduler: threading.Event = field(default_factory=threading.Event)
    on_delivery: Callable[[], None] | None = None  # wakes the delivery workers
    metrics: Metrics = field(default_factory=Metrics)  # /metrics: one registry per bot
    replicas: ReplicaRegistry | None = None  # this process among the replicas (serve)
    log_store: LogStore | None = None  # task logs (None: files under the data dir)

    @property
    def logs(self) -> LogStore:
        """Where every page, comment and command reads task logs from."""
        return self.log_store if self.log_store is not None else FileLogs(self.settings.data_dir)

    @property
    def github(self) -> GitHubClients:
        return self.clients.github

    def client(self, repo: str, installation_id: int | None) -> RepoClient:
        """The GitHub client for ``repo``; remembers the installation for later reports."""
        return self.clients.client(repo, installation_id)

    def mirror(self, repo: str, clone_url: str, installation_id: int | None,
               want: str | None = None) -> Path:
        """The repository's mirror holding ``want``, cloned with the right credential."""
        token = self.clients.git_token(repo, installation_id)
        return self.repos.mirror(repo, clone_url, want=want, token=token or None)

    def notify_work(self) -> None:
        """A delivery was recorded: wake the workers."""
        if self.on_delivery is not None:
            self.on_delivery()

    def acted_on(self, repo: str) -> bool:
        """True if ``repo`` matches one of ``FLOWBOT_REPOS``' owner/name globs."""
        from fnmatch import fnmatchcase

        return any(fnmatchcase(repo.lower(), glob.lower()) for glob in self.settings.repos)

    def run_url(self, run_id: str) -> str:
        return run_page_url(self.settings, run_id)
