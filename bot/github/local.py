"""GitHub kept in memory: a :class:`~bot.github.interfaces.RepoClient` that records what
flowbot would post instead of posting it.

``flowbot demo`` uses it when there is no GitHub: ``say`` tells the newcomer
about each post, and everyone is an admin (``everyone="admin"``). The bot's
tests use it to see every call: ``calls`` lists them as ``(method, args)``,
and statuses, comments, reactions, issues and check runs are kept as a tiny
GitHub would keep them. Pull requests are the ones put in ``pulls``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.github.interfaces import Annotation, Comment, GitHubError, PullInfo, trim_description

Say = Callable[[str], None]


def quiet(text: str) -> None:
    """A ``say`` that tells nobody (the tests read the records instead)."""


@dataclass
class LocalRepoClient:
    """The in-memory :class:`~bot.github.interfaces.RepoClient` of one repository."""

    full_name: str
    say: Say = quiet
    permissions: dict[str, str] = field(default_factory=dict)  # login -> role
    everyone: str = "read"  # the role of a login not in ``permissions``
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> issue, body, edits
    reactions: list[tuple[int, str]] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # title, body, open, comments
    pulls: dict[int, PullInfo] = field(default_factory=dict)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create_status(self, sha: str, state: str, context: str, description: str,
                      target_url: str | None = None) -> None:
        self._record("create_status", sha, state, context, description, target_url)
        self.statuses.append({"sha": sha, "state": state, "context": context,
                              "description": description, "target_url": target_url})
        link = f" → {target_url}" if target_url else ""
        self.say(f"status {context} on {sha[:8]}: {state} — {trim_description(description)}{link}")

    def find_comment(self, issue_number: int, marker: str) -> Comment | None:
        self._record("find_comment", issue_number, marker)
        return self._find_comment(issue_number, marker)

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> int:
        self._record("upsert_comment", issue_number, marker, body)
        found = self._find_comment(issue_number, marker)
        if found is None:
            return self._new_comment(issue_number, body)
        self._edit_comment(found.id, body)
        return found.id

    def create_comment(self, issue_number: int, body: str) -> int:
        self._record("create_comment", issue_number, body)
        return self._new_comment(issue_number, body)

    def edit_comment(self, comment_id: int, body: str) -> None:
        self._record("edit_comment", comment_id, body)
        self._edit_comment(comment_id, body)

    def add_reaction(self, comment_id: int, content: str) -> None:
        self._record("add_reaction", comment_id, content)
        self.reactions.append((comment_id, content))
        self.say(f"reaction :{content}: on comment #{comment_id}")

    def permission_of(self, username: str) -> str:
        self._record("permission_of", username)
        return self.permissions.get(username, self.everyone)

    def open_issue(self, title: str, body: str, labels: Sequence[str] = ()) -> int:
        self._record("open_issue", title, body)
        number = next(self._ids)
        self.issues[number] = {"title": title, "body": body, "open": True, "comments": []}
        self.say(f"issue #{number} opened: {title}")
        return number

    def comment_issue(self, number: int, body: str) -> None:
        self._record("comment_issue", number, body)
        self._issue(number)["comments"].append(body)
        self.say(f"comment on issue #{number}: {body}")

    def close_issue(self, number: int, body: str | None = None) -> None:
        self._record("close_issue", number, body)
        issue = self._issue(number)
        if body:
            issue["comments"].append(body)
        issue["open"] = False
        self.say(f"issue #{number} closed")

    def find_open_issue(self, marker: str) -> int | None:
        self._record("find_open_issue", marker)
        return next((number for number, issue in self.issues.items()
                     if issue["open"] and marker in issue["body"]), None)

    def get_pull(self, number: int) -> PullInfo:
        self._record("get_pull", number)
        if number not in self.pulls:
            raise GitHubError("get pull request", 404, "no pull requests without GitHub")
        return self.pulls[number]

    def create_check_run(self, name: str, head_sha: str, *, title: str, summary: str,
                         conclusion: str | None = None, annotations: Sequence[Annotation] = (),
                         details_url: str | None = None) -> int | None:
        self._record("create_check_run", name, head_sha)
        self.check_runs.append({"name": name, "sha": head_sha, "conclusion": conclusion,
                                "annotations": list(annotations)})
        return None  # as with token auth: only a GitHub App has check runs

    def names(self) -> list[str]:
        """The methods called, in order."""
        return [name for name, _ in self.calls]

    def bodies(self) -> list[str]:
        """The body of every comment, in the order they were first posted."""
        return [comment["body"] for comment in self.comments.values()]

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def _find_comment(self, issue_number: int, marker: str) -> Comment | None:
        with self._lock:
            for cid, comment in self.comments.items():
                if comment["issue"] == issue_number and marker in comment["body"]:
                    return Comment(cid, comment["body"], "flowbot", "")
        return None

    def _new_comment(self, issue_number: int, body: str) -> int:
        with self._lock:
            cid = next(self._ids)
            self.comments[cid] = {"issue": issue_number, "body": body, "edits": 0}
        self.say(f"comment #{cid} on #{issue_number}:\n{body}")
        return cid

    def _edit_comment(self, comment_id: int, body: str) -> None:
        with self._lock:
            comment = self.comments[comment_id]
            old, comment["body"] = comment["body"], body
            comment["edits"] += 1
        if old != body:
            self.say(f"comment #{comment_id} edited:\n{body}")

    def _issue(self, number: int) -> dict[str, Any]:
        if number not in self.issues:
            raise GitHubError("issue", 404, f"no issue #{number}")
        return self.issues[number]


@dataclass
class LocalGitHub:
    """The :class:`~bot.github.interfaces.GitHubClients` of :class:`LocalRepoClient`: one per
    repository, all sharing ``say`` and the roles in ``permissions``."""

    say: Say = quiet
    permissions: dict[str, str] = field(default_factory=dict)
    everyone: str = "read"
    clients: dict[str, LocalRepoClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_repo(self, full_name: str, installation_id: int | None) -> LocalRepoClient:
        with self._lock:
            if full_name not in self.clients:
                self.clients[full_name] = LocalRepoClient(
                    full_name, self.say, self.permissions, self.everyone)
            return self.clients[full_name]

    def git_token(self, installation_id: int | None) -> str:
        return ""
