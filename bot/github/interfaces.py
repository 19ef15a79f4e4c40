"""The narrow GitHub interfaces the handlers use, and their shared vocabulary.

Handlers see a :class:`RepoClient` per repository, obtained from a
:class:`GitHubClients` factory; ``bot/github/client.py`` implements both with
PyGithub (token or GitHub App), ``bot/github/local.py`` in memory (demo, tests).
Everything here is pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from runner.errors import FlowbotError

# GitHub's limits: longer values are refused with 422, so flowbot trims them.
STATUS_DESCRIPTION_MAX = 140
COMMENT_BODY_MAX = 65536
TRUNCATED_NOTE = "\n\n… (truncated: the full report is on flowbot's run page)"
ROLES = ("admin", "maintain", "write", "triage", "read", "none")


class StatusState(StrEnum):
    """Commit status states GitHub accepts."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class GitHubError(FlowbotError):
    """A GitHub API call failed after retries; the message never holds a credential."""

    def __init__(self, action: str, status: int | None, detail: str) -> None:
        self.action = action
        self.status = status
        self.detail = detail
        code = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"GitHub {action} failed ({code}): {detail}")


@dataclass(frozen=True)
class Comment:
    """An issue or pull request comment."""

    id: int
    body: str
    author: str
    url: str


@dataclass(frozen=True)
class Annotation:
    """A line annotation of a check run (``level``: notice, warning or failure)."""

    path: str
    start_line: int
    message: str
    level: str = "failure"
    end_line: int | None = None
    start_column: int | None = None
    end_column: int | None = None
    title: str = ""


@dataclass(frozen=True)
class PullInfo:
    """What flowbot needs of a pull request to run a flow from it."""

    number: int
    head_sha: str
    head_ref: str
    head_full_name: str  # the fork's name for a PR from a fork
    head_clone_url: str
    base_ref: str
    is_fork: bool


class RepoClient(Protocol):
    """The GitHub calls flowbot makes for one repository."""

    full_name: str

    def create_status(self, sha: str, state: str, context: str, description: str,
                      target_url: str | None = None) -> None:
        """Set commit status ``context`` on ``sha``; ``state`` is a :class:`StatusState`
        value. ``description`` is trimmed to GitHub's 140 characters."""

    def find_comment(self, issue_number: int, marker: str) -> Comment | None:
        """flowbot's own comment on the issue/PR whose body contains ``marker``
        (e.g. ``<!-- flowbot:validate -->``); comments by others are never matched."""

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> int:
        """The sticky comment: edit flowbot's comment holding ``marker``, else create
        it (``marker`` is prepended when ``body`` lacks it). Returns the comment id."""

    def create_comment(self, issue_number: int, body: str) -> int:
        """Post a new comment on an issue or PR; returns its id."""

    def edit_comment(self, comment_id: int, body: str) -> None:
        """Replace the body of issue comment ``comment_id``."""

    def add_reaction(self, comment_id: int, content: str) -> None:
        """React to an issue comment (``eyes``, ``+1``, ``rocket``, …); idempotent."""

    def permission_of(self, username: str) -> str:
        """The user's role on the repository from the collaborator permission API:
        one of admin, maintain, write, triage, read, none."""

    def open_issue(self, title: str, body: str, labels: Sequence[str] = ()) -> int:
        """Open an issue; returns its number."""

    def comment_issue(self, number: int, body: str) -> None:
        """Comment on issue ``number``."""

    def close_issue(self, number: int, body: str | None = None) -> None:
        """Close issue ``number``, after a closing comment if ``body`` is given."""

    def find_open_issue(self, marker: str) -> int | None:
        """The number of an open issue flowbot opened whose body holds ``marker``."""

    def get_pull(self, number: int) -> PullInfo:
        """Head and base of pull request ``number`` (for ``/run`` in a PR comment)."""

    def create_check_run(self, name: str, head_sha: str, *, title: str, summary: str,
                         conclusion: str | None = None,
                         annotations: Sequence[Annotation] = (),
                         details_url: str | None = None) -> int | None:
        """A completed (or, without ``conclusion``, in-progress) check run with line
        annotations. Only a GitHub App may create check runs: with token auth this
        does nothing and returns None."""


class GitHubClients(Protocol):
    """Makes a :class:`RepoClient` for the repository an event is about."""

    def for_repo(self, full_name: str, installation_id: int | None) -> RepoClient:
        """A client acting on ``full_name``: as the App installation
        ``installation_id`` when flowbot is a GitHub App, else with its token."""

    def git_token(self, installation_id: int | None) -> str:
        """The credential for cloning over https ("" when none is configured)."""


def trim_description(text: str) -> str:
    """A status description GitHub accepts: one line, at most 140 characters."""
    line = " ".join(text.split())
    if len(line) <= STATUS_DESCRIPTION_MAX:
        return line
    return line[: STATUS_DESCRIPTION_MAX - 1] + "…"


def trim_body(body: str) -> str:
    """A comment body within GitHub's 65536-character limit."""
    if len(body) <= COMMENT_BODY_MAX:
        return body
    return body[: COMMENT_BODY_MAX - len(TRUNCATED_NOTE)] + TRUNCATED_NOTE


def with_marker(body: str, marker: str) -> str:
    """``body`` carrying ``marker`` (first line) so the comment can be found again."""
    return body if marker in body else f"{marker}\n{body}"
