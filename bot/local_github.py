"""A stand-in for GitHub when there is none (``flowbot demo``): it keeps what
flowbot would post in memory and tells ``say`` about each post, so a newcomer
sees the statuses and comments without credentials. Everyone is an admin.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.github import Annotation, Comment, GitHubError, PullInfo, trim_description

Say = Callable[[str], None]


@dataclass
class LocalRepoClient:
    full_name: str
    say: Say
    statuses: list[tuple[str, str, str, str]] = field(default_factory=list)
    comments: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (issue, body)
    issues: dict[int, tuple[str, str, bool]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create_status(self, sha: str, state: str, context: str, description: str,
                      target_url: str | None = None) -> None:
        self.statuses.append((sha, state, context, description))
        link = f" → {target_url}" if target_url else ""
        self.say(f"status {context} on {sha[:8]}: {state} — {trim_description(description)}{link}")

    def find_comment(self, issue_number: int, marker: str) -> Comment | None:
        with self._lock:
            for cid, (issue, body) in self.comments.items():
                if issue == issue_number and marker in body:
                    return Comment(cid, body, "flowbot", "")
        return None

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> int:
        found = self.find_comment(issue_number, marker)
        if found is None:
            return self.create_comment(issue_number, body)
        self.edit_comment(found.id, body)
        return found.id

    def create_comment(self, issue_number: int, body: str) -> int:
        with self._lock:
            cid = next(self._ids)
            self.comments[cid] = (issue_number, body)
        self.say(f"comment #{cid} on #{issue_number}:\n{body}")
        return cid

    def edit_comment(self, comment_id: int, body: str) -> None:
        with self._lock:
            issue, old = self.comments[comment_id]
            self.comments[comment_id] = (issue, body)
        if old != body:
            self.say(f"comment #{comment_id} edited:\n{body}")

    def add_reaction(self, comment_id: int, content: str) -> None:
        self.say(f"reaction :{content}: on comment #{comment_id}")

    def permission_of(self, username: str) -> str:
        return "admin"

    def open_issue(self, title: str, body: str, labels: Sequence[str] = ()) -> int:
        number = next(self._ids)
        self.issues[number] = (title, body, True)
        self.say(f"issue #{number} opened: {title}")
        return number

    def comment_issue(self, number: int, body: str) -> None:
        self.say(f"comment on issue #{number}: {body}")

    def close_issue(self, number: int, body: str | None = None) -> None:
        title, text, _ = self.issues[number]
        self.issues[number] = (title, text, False)
        self.say(f"issue #{number} closed")

    def find_open_issue(self, marker: str) -> int | None:
        return next((n for n, (_, body, is_open) in self.issues.items()
                     if is_open and marker in body), None)

    def get_pull(self, number: int) -> PullInfo:
        raise GitHubError("get pull request", 404, "no pull requests without GitHub")

    def create_check_run(self, name: str, head_sha: str, *, title: str, summary: str,
                         conclusion: str | None = None, annotations: Sequence[Annotation] = (),
                         details_url: str | None = None) -> int | None:
        return None  # only a GitHub App has check runs


@dataclass
class LocalGitHub:
    """The :class:`~bot.github.GitHubClients` of the stand-in."""

    say: Say
    clients: dict[str, LocalRepoClient] = field(default_factory=dict)

    def for_repo(self, full_name: str, installation_id: int | None) -> LocalRepoClient:
        if full_name not in self.clients:
            self.clients[full_name] = LocalRepoClient(full_name, self.say)
        return self.clients[full_name]

    def git_token(self, installation_id: int | None) -> str:
        return ""
