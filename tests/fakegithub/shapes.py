"""JSON objects in the shape GitHub's REST API returns them.

Each object starts from a skeleton of its schema in the vendored description
(every required field, placeholder values), so responses always validate; the
fields flowbot and PyGithub read carry real values on top.
"""

from __future__ import annotations

from typing import Any

from tests.fakegithub.openapi import Checker
from tests.fakegithub.state import App, Comment, Issue, Repo, State, now_iso


class Shaper:
    """Builds response objects; ``base`` is the fake's URL (the API root)."""

    def __init__(self, state: State, base: str) -> None:
        self.state = state
        self.base = base

    def like(self, schema: str, api: str, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` over the skeleton of ``schema``; empty ``*_url`` fields go under ``api``."""
        data = Checker.shared().skeleton(schema)
        for key, value in data.items():
            if key.endswith("_url") and value in ("", "https://example.invalid/"):
                data[key] = f"{api}/{key.removesuffix('_url')}"
        data.update(values)
        return data

    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        uid = self.state.user_id(login)
        return self.like("simple-user", f"{self.base}/users/{login}", {
                "login": login, "id": uid, "node_id": f"U_{uid}", "type": kind,
                "site_admin": False, "url": f"{self.base}/users/{login}",
                "html_url": f"{self.base}/_html/{login}",
                "avatar_url": f"{self.base}/_avatars/{uid}", "gravatar_id": ""})

    def app(self, app: App) -> dict[str, Any]:
        return self.like("integration", f"{self.base}/apps/{app.slug}", {
                "id": app.id, "slug": app.slug, "node_id": f"A_{app.id}", "name": app.slug,
                "owner": self.user("flowbot-org", "Organization"), "description": "",
                "external_url": self.base, "html_url": f"{self.base}/_html/apps/{app.slug}",
                "created_at": now_iso(), "updated_at": now_iso(), "permissions": {},
                "events": []})

    def repo(self, repo: Repo) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        values = {"id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name,
                "full_name": repo.full_name, "owner": self.user(repo.owner),
                "private": repo.private, "visibility": "private" if repo.private else "public",
                "default_branch": repo.default_branch, "url": api,
                "html_url": f"{self.base}/_html/{repo.full_name}",
                "clone_url": f"{self.base}/_git/{repo.full_name}.git",
                "issues_url": f"{api}/issues{{/number}}", "fork": False, "archived": False,
                "created_at": "2024-01-01T00:00:00Z", "updated_at": now_iso()}
        return self.like("repository", api, self.like("full-repository", api, values))

    def status(self, repo: Repo, sha: str, body: dict[str, Any], login: str) -> dict[str, Any]:
        sid = self.state.next_id()
        api = f"{self.base}/repos/{repo.full_name}/statuses/{sha}"
        return self.like("status", api, {"id": sid, "node_id": f"S_{sid}", "state": body["state"],
                "context": body.get("context", "default"),
                "description": body.get("description"), "target_url": body.get("target_url"),
                "url": f"{self.base}/repos/{repo.full_name}/statuses/{sha}",
                "avatar_url": None, "creator": self.user(login),
                "created_at": now_iso(), "updated_at": now_iso()})

    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/issues/{issue.number}"
        data = self.like("issue", api, {
                "id": issue.number + repo.id * 1000, "node_id": f"I_{repo.id}_{issue.number}",
                "number": issue.number, "title": issue.title, "body": issue.body,
                "state": issue.state, "user": self.user(issue.user),
                "labels": [{"name": name, "id": abs(hash(name)) % 10**6, "color": "ededed"}
                           for name in issue.labels],
                "url": api, "html_url": f"{self.base}/_html/{repo.full_name}/issues/"
                                        f"{issue.number}",
                "comments_url": f"{api}/comments", "repository_url": self.repo(repo)["url"],
                "comments": len(self.state.comments_on(repo, issue.number)),
                "locked": False, "created_at": issue.created_at,
                "updated_at": issue.updated_at, "closed_at": issue.closed_at})
        if issue.pull is not None:
            data["pull_request"] = {"url": api.replace("/issues/", "/pulls/")}
        return data

    def pull(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        assert issue.pull is not None
        pull = issue.pull
        issue_data = self.issue(repo, issue)
        issue_data.pop("pull_request")
        data = self.like("pull-request", issue_data["url"].replace("/issues/", "/pulls/"),
                          issue_data)
        head_repo = self.repo(repo) | {"full_name": pull["head_repo"],
                                       "fork": pull["head_repo"] != repo.full_name}
        data.update({"url": data["url"].replace("/issues/", "/pulls/"), "merged": False,
                     "draft": False, "mergeable": True,
                     "head": {"ref": pull["head_ref"], "sha": pull["head_sha"],
                              "label": f"{pull['head_repo'].split('/')[0]}:{pull['head_ref']}",
                              "repo": head_repo, "user": self.user(issue.user)},
                     "base": {"ref": pull["base_ref"], "sha": "0" * 40,
                              "label": f"{repo.owner}:{pull['base_ref']}",
                              "repo": self.repo(repo), "user": self.user(repo.owner)}})
        return data

    def comment(self, comment: Comment) -> dict[str, Any]:
        api = f"{self.base}/repos/{comment.repo}/issues"
        return self.like("issue-comment", f"{api}/comments/{comment.id}", {
                "id": comment.id, "node_id": f"IC_{comment.id}", "body": comment.body,
                "user": self.user(comment.user, "Bot" if "[bot]" in comment.user else "User"),
                "url": f"{api}/comments/{comment.id}",
                "html_url": f"{self.base}/_html/{comment.repo}/issues/{comment.issue_number}"
                            f"#issuecomment-{comment.id}",
                "issue_url": f"{api}/{comment.issue_number}",
                "author_association": "NONE", "created_at": comment.created_at,
                "updated_at": comment.updated_at})

    def reaction(self, content: str, login: str) -> dict[str, Any]:
        rid = self.state.next_id()
        return self.like("reaction", self.base, {
                "id": rid, "node_id": f"RE_{rid}", "content": content,
                "user": self.user(login), "created_at": now_iso()})

    def check_run(self, repo: Repo, run_id: int, body: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/check-runs/{run_id}"
        run = self.like("check-run", api, {"id": run_id, "node_id": f"CR_{run_id}",
               "name": body["name"], "check_suite": {"id": run_id + 1},
               "head_sha": body["head_sha"], "external_id": body.get("external_id", ""),
               "status": body.get("status", "queued"), "conclusion": body.get("conclusion"),
               "details_url": body.get("details_url"),
               "url": f"{self.base}/repos/{repo.full_name}/check-runs/{run_id}",
               "html_url": f"{self.base}/_html/{repo.full_name}/runs/{run_id}",
               "started_at": body.get("started_at", now_iso()),
               "completed_at": body.get("completed_at"),
               "output": {"title": None, "summary": None, "text": None,
                          "annotations_count": 0, "annotations_url": f"{api}/annotations"},
               "annotations": []})
        run.update(self.check_run_update(run, body))
        return run

    def check_run_update(self, run: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """The fields a create/update body changes; annotations accumulate like GitHub's."""
        changes = {k: body[k] for k in ("name", "status", "conclusion", "details_url",
                                         "completed_at", "external_id") if k in body}
        if body.get("conclusion") and "status" not in body:
            changes["status"] = "completed"
        output = body.get("output")
        if output:
            annotations = run["annotations"] + list(output.get("annotations", []))
            changes["annotations"] = annotations
            changes["output"] = {"title": output.get("title"), "summary": output.get("summary"),
                                 "text": output.get("text"),
                                 "annotations_count": len(annotations),
                                 "annotations_url": f"{run['url']}/annotations"}
        return changes
