"""Webhook payloads shaped like GitHub's, for driving the service locally
(``flowbot demo``) exactly as GitHub would: same events, same fields."""

from __future__ import annotations

from typing import Any

ZERO_SHA = "0" * 40


def repository(full_name: str, clone_url: str, default_branch: str = "main") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {"id": 1, "name": name, "full_name": full_name, "private": True,
            "owner": {"login": owner, "id": 1, "type": "User"},
            "clone_url": clone_url, "default_branch": default_branch,
            "html_url": f"file://{clone_url}"}


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": 2, "type": "User"}


def push(repo: dict[str, Any], after: str, before: str = ZERO_SHA,
         ref: str = "refs/heads/main") -> dict[str, Any]:
    return {"ref": ref, "before": before, "after": after, "created": before == ZERO_SHA,
            "deleted": False, "forced": False, "commits": [],
            "head_commit": {"id": after}, "repository": repo, "pusher": {"name": "you"},
            "sender": _user("you")}


def pull_request(repo: dict[str, Any], number: int, head_sha: str, action: str = "opened",
                 head_ref: str = "feature") -> dict[str, Any]:
    owner = repo["owner"]["login"]
    return {"action": action, "number": number, "repository": repo, "sender": _user("you"),
            "pull_request": {
                "number": number, "state": "open", "title": "Add flows", "user": _user("you"),
                "head": {"ref": head_ref, "sha": head_sha, "repo": repo,
                         "label": f"{owner}:{head_ref}"},
                "base": {"ref": repo["default_branch"], "sha": head_sha, "repo": repo,
                         "label": f"{owner}:{repo['default_branch']}"}}}


def issue_comment(repo: dict[str, Any], number: int, body: str, login: str = "you",
                  comment_id: int = 1) -> dict[str, Any]:
    return {"action": "created", "repository": repo, "sender": _user(login),
            "issue": {"number": number, "title": "Try flowbot", "state": "open",
                      "user": _user(login)},
            "comment": {"id": comment_id, "body": body, "user": _user(login),
                        "author_association": "OWNER"}}
