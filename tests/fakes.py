"""Recording fakes shared by the bot's handler tests, and real-shaped payloads.

``FakeRepoClient`` records every GitHub call as ``(method, args)`` and keeps
comments, statuses and issues as a tiny GitHub would; ``FakeFlowSource``
serves flow files per commit; ``make_services`` wires them over a real
database. Payload builders follow GitHub's webhook documentation.
"""

from __future__ import annotations

import itertools
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.deliveries import DeliveryStore
from bot.github import Comment, PullInfo
from bot.services import Services
from bot.settings import Settings
from runner.clock import Clock
from runner.inputs import coerce_inputs
from runner.records import Status
from runner.registry import Registry
from runner.schedules import Schedules
from runner.service import Submission
from runner.store import RunStore

with warnings.catch_warnings():
    # starlette deprecates its httpx-based client in favour of an unreleased one
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]

_ids = itertools.count(1000)


@dataclass
class FakeRepoClient:
    repo: str
    permissions: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {issue, body}
    reactions: list[tuple[int, str]] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    pulls: dict[int, PullInfo] = field(default_factory=dict)
    check_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return self.repo

    def find_comment(self, issue_number: int, marker: str) -> Comment | None:
        self._record("find_comment", issue_number, marker)
        for cid, comment in self.comments.items():
            if comment["issue"] == issue_number and marker in comment["body"]:
                return Comment(cid, comment["body"], "flowbot", "")
        return None

    def get_pull(self, number: int) -> PullInfo:
        self._record("get_pull", number)
        return self.pulls[number]

    def create_check_run(self, name: str, head_sha: str, *, title: str, summary: str,
                         conclusion: str | None = None, annotations: Sequence[Any] = (),
                         details_url: str | None = None) -> int | None:
        self._record("create_check_run", name, head_sha)
        self.check_runs.append({"name": name, "sha": head_sha, "conclusion": conclusion,
                                "annotations": list(annotations)})
        return None

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def create_status(self, sha: str, state: str, context: str, description: str,
                      target_url: str | None = None) -> None:
        self._record("create_status", sha, state, context, description, target_url)
        self.statuses.append({"sha": sha, "state": state, "context": context,
                              "description": description, "target_url": target_url})

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> int:
        self._record("upsert_comment", issue_number, marker, body)
        for cid, comment in self.comments.items():
            if comment["issue"] == issue_number and marker in comment["body"]:
                comment["body"] = body
                comment["edits"] += 1
                return cid
        return self._new_comment(issue_number, body)

    def _new_comment(self, issue_number: int, body: str) -> int:
        cid = next(_ids)
        self.comments[cid] = {"issue": issue_number, "body": body, "edits": 0}
        return cid

    def create_comment(self, issue_number: int, body: str) -> int:
        self._record("create_comment", issue_number, body)
        return self._new_comment(issue_number, body)

    def edit_comment(self, comment_id: int, body: str) -> None:
        self._record("edit_comment", comment_id, body)
        self.comments[comment_id]["body"] = body
        self.comments[comment_id]["edits"] += 1

    def add_reaction(self, comment_id: int, content: str) -> None:
        self._record("add_reaction", comment_id, content)
        self.reactions.append((comment_id, content))

    def permission_of(self, username: str) -> str:
        self._record("permission_of", username)
        return self.permissions.get(username, "read")

    def open_issue(self, title: str, body: str, labels: Sequence[str] = ()) -> int:
        self._record("open_issue", title, body)
        number = len(self.issues) + 1
        self.issues[number] = {"title": title, "body": body, "open": True, "comments": []}
        return number

    def comment_issue(self, number: int, body: str) -> None:
        self._record("comment_issue", number, body)
        self.issues[number]["comments"].append(body)

    def close_issue(self, number: int, body: str | None = None) -> None:
        self._record("close_issue", number, body)
        if body:
            self.issues[number]["comments"].append(body)
        self.issues[number]["open"] = False

    def find_open_issue(self, marker: str) -> int | None:
        self._record("find_open_issue", marker)
        for number, issue in self.issues.items():
            if issue["open"] and marker in issue["body"]:
                return number
        return None

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def bodies(self) -> list[str]:
        return [c["body"] for c in self.comments.values()]


@dataclass
class FakeGitHub:
    permissions: dict[str, str] = field(default_factory=dict)
    clients: dict[str, FakeRepoClient] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_repo(self, full_name: str, installation_id: int | None) -> FakeRepoClient:
        with self.lock:
            if full_name not in self.clients:
                self.clients[full_name] = FakeRepoClient(full_name, self.permissions)
            return self.clients[full_name]

    def git_token(self, installation_id: int | None) -> str:
        return ""


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
                  runs: Any = None, data_dir: Path = Path("/tmp")) -> Services:
    settings = Settings(data_dir=data_dir, webhook_secret="s3cret", repos=repos,
                        public_url="http://flowbot.test")
    from bot.handlers import build_router
    from bot.run_reporting import RunReporting
    from bot.run_reports import RunReports
    from bot.services import RepoClients

    store, deliveries = RunStore(engine, clock), DeliveryStore(engine, clock)
    clients = RepoClients(FakeGitHub(), deliveries)
    return Services(
        settings=settings, clock=clock, engine=engine, deliveries=deliveries,
        registry=Registry(engine, clock), schedules=Schedules(engine, clock), store=store,
        clients=clients, repos=FakeFlowSource(),
        runs=runs if runs is not None else FakeRuns(store),
        reporting=RunReporting(settings, store, clients, RunReports(engine)),
        router=build_router(),
    )


# --- payloads shaped like GitHub's (docs: "Webhook events and payloads") ---------

def repository(full_name: str = "acme/flows", clone_url: str = "") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name,
        "full_name": full_name, "private": False,
        "owner": {"login": owner, "id": 1, "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
        "clone_url": clone_url or f"https://github.com/{full_name}.git",
        "default_branch": "main",
    }


def user(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**7, "type": kind,
            "html_url": f"https://github.com/{login}"}


def pull_request_event(action: str, number: int, sha: str, *, repo: str = "acme/flows",
                       head_repo: str | None = None, clone_url: str = "") -> dict[str, Any]:
    base = repository(repo, clone_url)
    head = repository(head_repo, clone_url) if head_repo else base
    return {
        "action": action, "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/{repo}/pulls/{number}",
            "id": 1, "number": number, "state": "open", "title": "Update flows",
            "user": user("octocat"),
            "head": {"label": f"{head['owner']['login']}:feature", "ref": "feature",
                     "sha": sha, "repo": head, "user": user(head["owner"]["login"])},
            "base": {"label": f"{base['owner']['login']}:main", "ref": "main",
                     "sha": "b" * 40, "repo": base, "user": user(base["owner"]["login"])},
        },
        "repository": base, "sender": user("octocat"),
    }


def push_event(after: str, *, repo: str = "acme/flows", ref: str = "refs/heads/main",
               before: str = "0" * 40, deleted: bool = False, forced: bool = False,
               clone_url: str = "") -> dict[str, Any]:
    return {
        "ref": ref, "before": before, "after": after, "created": before == "0" * 40,
        "deleted": deleted, "forced": forced, "base_ref": None,
        "compare": f"https://github.com/{repo}/compare/{before[:12]}...{after[:12]}",
        "commits": [], "head_commit": None if deleted else {"id": after, "message": "m"},
        "repository": repository(repo, clone_url), "pusher": {"name": "octocat"},
        "sender": user("octocat"),
    }


def issue_comment_event(body: str, *, login: str = "octocat", action: str = "created",
                        number: int = 7, pull: bool = False, repo: str = "acme/flows",
                        kind: str = "User", comment_id: int = 555,
                        clone_url: str = "") -> dict[str, Any]:
    issue: dict[str, Any] = {
        "url": f"https://api.github.com/repos/{repo}/issues/{number}", "number": number,
        "title": "Run things", "state": "open", "user": user("octocat"),
    }
    if pull:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
    return {
        "action": action, "issue": issue,
        "comment": {"id": comment_id, "body": body, "user": user(login, kind),
                    "author_association": "MEMBER", "created_at": "2026-01-01T00:00:00Z"},
        "repository": repository(repo, clone_url), "sender": user(login, kind),
    }


def ping_event() -> dict[str, Any]:
    return {"zen": "Keep it logically awesome.", "hook_id": 1,
            "hook": {"type": "Repository", "id": 1, "events": ["push"]}}


def with_installation(payload: Mapping[str, Any], installation_id: int) -> dict[str, Any]:
    return {**payload, "installation": {"id": installation_id}}
