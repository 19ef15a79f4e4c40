"""The PyGithub-backed :class:`~bot.github.RepoClient` for one repository.

Objects are lazy (``Github(lazy=True)``): building a repository, issue or
comment handle sends nothing; only the call that acts does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from github import GithubException
from github.GithubObject import NotSet
from github.IssueComment import IssueComment
from github.MainClass import Github

from bot.github import (
    ROLES,
    Annotation,
    Comment,
    GitHubError,
    PullInfo,
    trim_body,
    trim_description,
    with_marker,
)
from bot.github_auth import guarded

log = logging.getLogger(__name__)
T = TypeVar("T")
ANNOTATIONS_PER_REQUEST = 50  # GitHub's cap per check-run request
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


class PyGithubRepoClient:
    """Implements :class:`bot.github.RepoClient`; see its docstrings."""

    def __init__(self, github: Github, full_name: str, own_login: Callable[[], str], *,
                 is_app: bool, secrets: Sequence[str] = ()) -> None:
        self.full_name = full_name
        self._repo = github.get_repo(full_name)
        self._own_login = own_login
        self._is_app = is_app
        self._secrets = [s for s in secrets if s]

    def create_status(self, sha: str, state: str, context: str, description: str,
                      target_url: str | None = None) -> None:
        commit = self._repo.get_commit(sha)
        self._call("create status", lambda: commit.create_status(
            str(state), target_url or NotSet, trim_description(description), context))

    def find_comment(self, issue_number: int, marker: str) -> Comment | None:
        def find() -> Comment | None:
            own = self._own_login()
            for item in self._repo.get_issue(issue_number).get_comments():
                if item.user.login == own and marker in (item.body or ""):
                    return Comment(item.id, item.body, item.user.login, item.html_url)
            return None
        return self._call("find comment", find)

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> int:
        text = with_marker(body, marker)
        existing = self.find_comment(issue_number, marker)
        if existing is None:
            return self.create_comment(issue_number, text)
        try:
            self.edit_comment(existing.id, text)
        except GitHubError as exc:
            if exc.status != 404:
                raise
            return self.create_comment(issue_number, text)  # deleted meanwhile: post anew
        return existing.id

    def create_comment(self, issue_number: int, body: str) -> int:
        issue = self._repo.get_issue(issue_number)
        return self._call("create comment", lambda: issue.create_comment(trim_body(body)).id)

    def edit_comment(self, comment_id: int, body: str) -> None:
        self._call("edit comment", lambda: self._comment(comment_id).edit(trim_body(body)))

    def add_reaction(self, comment_id: int, content: str) -> None:
        self._call("add reaction", lambda: self._comment(comment_id).create_reaction(content))

    def permission_of(self, username: str) -> str:
        if not _LOGIN.fullmatch(username):
            return "none"  # not a GitHub login: no permission
        url = f"{self._repo.url}/collaborators/{username}/permission"

        def lookup() -> str:
            try:
                _, data = self._repo.requester.requestJsonAndCheck("GET", url)
            except GithubException as exc:
                if exc.status == 404:
                    return "none"  # no such user
                raise
            role = str(data.get("role_name") or "")
            # Custom roles carry their own name; the legacy field still says the level.
            return role if role in ROLES else str(data.get("permission") or "none")
        return self._call("permission lookup", lookup)

    def open_issue(self, title: str, body: str, labels: Sequence[str] = ()) -> int:
        return self._call("open issue", lambda: self._repo.create_issue(
            title, body=trim_body(body), labels=list(labels)).number)

    def comment_issue(self, number: int, body: str) -> None:
        self.create_comment(number, body)

    def close_issue(self, number: int, body: str | None = None) -> None:
        if body:
            self.create_comment(number, body)
        issue = self._repo.get_issue(number)
        self._call("close issue", lambda: issue.edit(state="closed"))

    def find_open_issue(self, marker: str) -> int | None:
        def find() -> int | None:
            own = self._own_login()
            for issue in self._repo.get_issues(state="open"):
                if issue.pull_request is None and issue.user.login == own \
                        and marker in (issue.body or ""):
                    return int(issue.number)
            return None
        return self._call("find issue", find)

    def get_pull(self, number: int) -> PullInfo:
        def fetch() -> PullInfo:
            pull = self._repo.get_pull(number)
            head_repo = pull.head.repo  # None when the fork was deleted
            head_name = head_repo.full_name if head_repo else ""
            return PullInfo(number, pull.head.sha, pull.head.ref, head_name,
                            head_repo.clone_url if head_repo else "", pull.base.ref,
                            is_fork=head_name.lower() != self.full_name.lower())
        return self._call("get pull request", fetch)

    def create_check_run(self, name: str, head_sha: str, *, title: str, summary: str,
                         conclusion: str | None = None,
                         annotations: Sequence[Annotation] = (),
                         details_url: str | None = None) -> int | None:
        if not self._is_app:
            log.debug("check run skipped: token auth", extra={"repo": self.full_name})
            return None  # only GitHub Apps may create check runs
        batches = list(_batches([_annotation(a) for a in annotations])) or [[]]
        extra: dict[str, Any] = {"conclusion": conclusion} if conclusion else {
            "status": "in_progress"}
        if details_url:
            extra["details_url"] = details_url

        def create() -> int:
            output = {"title": title, "summary": trim_body(summary)}
            run = self._repo.create_check_run(
                name, head_sha, output=output | {"annotations": batches[0]}, **extra)
            for batch in batches[1:]:
                run.edit(output=output | {"annotations": batch})
            return int(run.id)
        return self._call("create check run", create)

    def _comment(self, comment_id: int) -> IssueComment:
        url = f"{self._repo.url}/issues/comments/{comment_id}"
        return IssueComment(self._repo.requester, url=url)

    def _call(self, action: str, func: Callable[[], T]) -> T:
        return guarded(action, func, self._secrets, f"repository {self.full_name}")


def _annotation(item: Annotation) -> dict[str, Any]:
    data: dict[str, Any] = {"path": item.path, "start_line": item.start_line,
                            "end_line": item.end_line or item.start_line,
                            "annotation_level": item.level, "message": item.message}
    if item.title:
        data["title"] = item.title
    if item.start_column is not None and data["end_line"] == item.start_line:
        data["start_column"] = item.start_column  # columns only within one line
        data["end_column"] = item.end_column or item.start_column
    return data


def _batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), ANNOTATIONS_PER_REQUEST):
        yield items[start:start + ANNOTATIONS_PER_REQUEST]
