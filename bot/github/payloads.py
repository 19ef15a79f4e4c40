"""Webhook payloads shaped like GitHub's (docs: "Webhook events and payloads"),
for driving flowbot without GitHub: ``flowbot demo`` and the tests send them
through the same router as GitHub's own deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ZERO_SHA = "0" * 40


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
               before: str = ZERO_SHA, deleted: bool = False, forced: bool = False,
               clone_url: str = "") -> dict[str, Any]:
    return {
        "ref": ref, "before": before, "after": after, "created": before == ZERO_SHA,
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
