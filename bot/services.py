"""What handlers, workers and pages are given: one :class:`Services` object.

Handlers only see the narrow interfaces declared here (a GitHub client
factory, a flow reader, a run submitter); :func:`build_services` wires the
real implementations from :class:`~bot.settings.Settings`, and tests pass
recording fakes (``tests/fakes.py``) instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from bot.deliveries import DeliveryStore
from bot.settings import Settings
from runner.cron import Clock
from runner.flows import Flow
from runner.registry import Registry
from runner.schedules import Schedules
from runner.store import RunStore


class RepoClient(Protocol):
    """The GitHub calls flowbot makes for one repository."""

    def create_status(
        self, sha: str, state: str, context: str, description: str, target_url: str | None = None
    ) -> None:
        """Set commit status ``context`` on ``sha`` (state: pending/success/failure/error)."""

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> int:
        """Edit flowbot's comment containing ``marker`` on the issue/PR, or create it; its id."""

    def create_comment(self, issue_number: int, body: str) -> int:
        """Post a new comment; returns its id."""

    def edit_comment(self, comment_id: int, body: str) -> None:
        """Replace the body of comment ``comment_id``."""

    def add_reaction(self, comment_id: int, content: str) -> None:
        """React to an issue comment (``eyes``, ``+1``, ...)."""

    def permission_of(self, username: str) -> str:
        """The user's repository permission: admin, maintain, write, triage, read or none."""

    def open_issue(self, title: str, body: str) -> int:
        """Open an issue; returns its number."""

    def comment_issue(self, number: int, body: str) -> None:
        """Comment on issue ``number``."""

    def close_issue(self, number: int, body: str | None = None) -> None:
        """Close issue ``number``, with a closing comment if ``body`` is given."""

    def find_open_issue(self, marker: str) -> int | None:
        """The number of an open issue flowbot opened whose body holds ``marker``."""


class ClientFactory(Protocol):
    def for_repo(self, full_name: str, installation_id: int | None) -> RepoClient:
        """A client acting on ``full_name`` (as the App installation, when an App)."""


class FlowSource(Protocol):
    """Repository content: cached mirrors, flows read at a commit, exports for runs."""

    def mirror(self, full_name: str, clone_url: str) -> Path:
        """Fetch (or clone) the mirror of ``full_name``; its path."""

    def read_flows(self, mirror: Path, sha: str) -> dict[str, bytes]:
        """``flows/*.yml`` at ``sha`` by repository path, without a work tree."""


class RunSubmitter(Protocol):
    """The part of the run service the bot drives."""

    def submit(
        self, flow: Flow, inputs: Mapping[str, Any], *, repo: str, commit: str | None,
        source: Path | None, trigger: Any,
    ) -> Any:
        """Queue a run; raises InputError for bad inputs. Returns what has ``run_id``."""

    def cancel(self, run_id: str) -> bool:
        """Cancel run ``run_id``; False if it is unknown or already over."""


@dataclass
class Services:
    """Everything the app, the workers and the handlers use."""

    settings: Settings
    clock: Clock
    engine: Engine
    deliveries: DeliveryStore
    registry: Registry
    schedules: Schedules
    store: RunStore
    github: ClientFactory
    repos: FlowSource
    runs: RunSubmitter | None = None
    wake_scheduler: threading.Event = field(default_factory=threading.Event)
    on_delivery: Callable[[], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def notify_work(self) -> None:
        """A delivery was recorded: wake the workers."""
        if self.on_delivery is not None:
            self.on_delivery()

    def acted_on(self, repo: str) -> bool:
        """True if ``repo`` matches one of ``FLOWBOT_REPOS``' owner/name globs."""
        from fnmatch import fnmatchcase

        return any(fnmatchcase(repo.lower(), glob.lower()) for glob in self.settings.repos)

    def run_url(self, run_id: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/runs/{run_id}"
