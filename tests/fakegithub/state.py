"""The in-memory world of the fake GitHub: repositories, people, tokens, issues,
comments, statuses and check runs. Plain data; the routes turn it into JSON.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PERMISSIONS = ("admin", "maintain", "write", "triage", "read", "none")
# The legacy ``permission`` field folds the fine-grained roles into four levels.
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write",
                     "triage": "read", "read": "read", "none": "none"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Identity:
    """Who a token acts as; ``kind`` is GitHub's user ``type`` (User or Bot)."""

    login: str
    kind: str = "User"
    installation_id: int | None = None
    expires_at: datetime | None = None
    scopes: str | None = None  # a classic token's X-OAuth-Scopes ("repo, gist"); None: not sent


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    body: str
    user: str
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    reactions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Issue:
    """An issue or, with ``pull`` set, a pull request (they share numbers)."""

    number: int
    title: str
    body: str
    user: str
    labels: list[str] = field(default_factory=list)
    state: str = "open"
    pull: dict[str, Any] | None = None  # head/base refs and shas for a PR
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str = "main"
    private: bool = False
    collaborators: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def role_of(self, login: str) -> str:
        """The role of ``login``: outsiders read a public repo, see nothing of a private one."""
        if login == self.owner:
            return "admin"
        return self.collaborators.get(login, "none" if self.private else "read")


@dataclass
class App:
    id: int
    slug: str
    public_key_pem: bytes
    installations: set[int] = field(default_factory=set)


class State:
    """Everything the fake knows. One lock: the server is threaded."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, Identity] = {}
        self.comments: dict[int, Comment] = {}
        self.apps: dict[int, App] = {}
        self.users: dict[str, int] = {}
        self._ids = itertools.count(1000)

    def next_id(self) -> int:
        return next(self._ids)

    def user_id(self, login: str) -> int:
        with self.lock:
            return self.users.setdefault(login, self.next_id())

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def add_repo(self, full_name: str, *, default_branch: str = "main",
                 private: bool = False) -> Repo:
        owner, name = full_name.split("/")
        with self.lock:
            repo = Repo(self.next_id(), owner, name, default_branch, private)
            self.repos[full_name.lower()] = repo
            self.user_id(owner)
            return repo

    def add_token(self, token: str, login: str, kind: str = "User") -> Identity:
        with self.lock:
            identity = Identity(login, kind)
            self.tokens[token] = identity
            self.user_id(login)
            return identity

    def add_issue(self, repo: Repo, title: str, body: str, user: str,
                  labels: list[str] | None = None,
                  pull: dict[str, Any] | None = None) -> Issue:
        with self.lock:
            number = max([0, *repo.issues]) + 1
            issue = Issue(number, title, body, user, list(labels or []), pull=pull)
            repo.issues[number] = issue
            self.user_id(user)
            return issue

    def add_comment(self, repo: Repo, issue_number: int, body: str, user: str) -> Comment:
        with self.lock:
            comment = Comment(self.next_id(), repo.full_name, issue_number, body, user)
            self.comments[comment.id] = comment
            self.user_id(user)
            return comment

    def comments_on(self, repo: Repo, issue_number: int) -> list[Comment]:
        with self.lock:
            return [c for c in self.comments.values()
                    if c.repo == repo.full_name and c.issue_number == issue_number]
