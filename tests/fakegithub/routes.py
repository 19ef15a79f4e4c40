"""The fake's endpoints: each turns state into JSON of the shape GitHub returns
(enough fields for PyGithub to parse). Requests arrive already validated.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakegithub import shapes
from tests.fakegithub.state import LEGACY_PERMISSION, Identity, Repo, State, now_iso

Answer = tuple[int, Any]
NOT_FOUND: Answer = (404, {"message": "Not Found",
                           "documentation_url": "https://docs.github.com/rest"})
FORBIDDEN: Answer = (403, {"message": "Resource not accessible by integration",
                           "documentation_url": "https://docs.github.com/rest"})
TOKEN_LIFETIME = timedelta(hours=1)


class _Stop(Exception):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


@dataclass
class Context:
    state: State
    params: dict[str, Any]
    query: dict[str, list[str]]
    body: Any
    identity: Identity
    base: str
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def repo(self, write: bool = False) -> Repo:
        repo = self.state.repo(self.params["owner"], self.params["repo"])
        if repo is None:
            raise _Stop(NOT_FOUND)
        role = repo.role_of(self.identity.login)
        if self.identity.kind == "User" and role == "none":
            raise _Stop(NOT_FOUND)  # GitHub hides what you may not see
        if write and self.identity.kind == "User" and role not in ("admin", "maintain", "write"):
            raise _Stop(FORBIDDEN)
        return repo

    def q(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[-1]

    def shape(self) -> shapes.Shaper:
        return shapes.Shaper(self.state, self.base)


Route = Callable[[Context], Answer]
_ROUTES: dict[tuple[str, str], Route] = {}


def route(method: str, template: str) -> Callable[[Route], Route]:
    def register(func: Route) -> Route:
        _ROUTES[(method, template)] = func
        return func
    return register


def dispatch(method: str, template: str, ctx: Context) -> Answer:
    func = _ROUTES.get((method.upper(), template))
    if func is None:
        return 501, {"message": f"the fake does not implement {method} {template}"}
    try:
        with ctx.state.lock:
            return func(ctx)
    except _Stop as stop:
        return stop.answer


R = "/repos/{owner}/{repo}"


@route("GET", "/rate_limit")
def rate_limit(ctx: Context) -> Answer:
    core = {"limit": 5000, "remaining": 4999, "reset": 4102444800, "used": 1,
            "resource": "core"}
    return 200, {"resources": {"core": core, "search": core}, "rate": core}


@route("GET", "/user")
def get_user(ctx: Context) -> Answer:
    shape = ctx.shape()
    user = shape.user(ctx.identity.login, ctx.identity.kind) | {"user_view_type": "private"}
    return 200, shape.like("private-user", user["url"], user)


@route("GET", "/app")
def get_app(ctx: Context) -> Answer:
    app = next(a for a in ctx.state.apps.values() if a.slug == ctx.identity.login)
    return 200, ctx.shape().app(app)


@route("GET", "/app/installations")
def list_installations(ctx: Context) -> Answer:
    app = next(a for a in ctx.state.apps.values() if a.slug == ctx.identity.login)
    # GitHub's description says the account is a simple user AND an enterprise (allOf)
    account = ctx.shape().user("flowbot-org", "Organization") | {
        "name": "flowbot-org", "slug": "flowbot-org",
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
    return 200, _page(ctx, [{
        "id": number, "app_id": app.id, "app_slug": app.slug, "target_id": number,
        "target_type": "Organization", "account": account, "repository_selection": "all",
        "access_tokens_url": f"{ctx.base}/app/installations/{number}/access_tokens",
        "repositories_url": f"{ctx.base}/installation/repositories",
        "html_url": f"{ctx.base}/_html/settings/installations/{number}",
        "permissions": {"contents": "read"}, "events": [], "single_file_name": None,
        "suspended_by": None, "suspended_at": None,
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
        for number in sorted(app.installations)])


@route("POST", "/app/installations/{installation_id}/access_tokens")
def create_installation_token(ctx: Context) -> Answer:
    installation = int(ctx.params["installation_id"])
    app = next(a for a in ctx.state.apps.values() if a.slug == ctx.identity.login)
    if installation not in app.installations:
        return NOT_FOUND
    token = "ghs_" + secrets.token_hex(18)
    expires = datetime.now(UTC).replace(microsecond=0) + TOKEN_LIFETIME
    ctx.state.tokens[token] = Identity(f"{app.slug}[bot]", "Bot", installation, expires)
    ctx.state.user_id(f"{app.slug}[bot]")
    return 201, {"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "permissions": {"checks": "write", "contents": "read", "issues": "write",
                                 "pull_requests": "write", "statuses": "write"},
                 "repository_selection": "all"}


@route("GET", R)
def get_repo(ctx: Context) -> Answer:
    return 200, ctx.shape().repo(ctx.repo())


@route("GET", R + "/collaborators/{username}/permission")
def get_permission(ctx: Context) -> Answer:
    repo = ctx.repo()
    role = repo.role_of(ctx.params["username"])
    shape = ctx.shape()
    user = shape.user(ctx.params["username"]) | {"role_name": role}
    return 200, {"permission": LEGACY_PERMISSION[role], "role_name": role,
                 "user": shape.like("nullable-collaborator", user["url"], user)}


@route("POST", R + "/statuses/{sha}")
def create_status(ctx: Context) -> Answer:
    repo = ctx.repo(write=True)
    status = ctx.shape().status(repo, ctx.params["sha"], ctx.body, ctx.identity.login)
    repo.statuses.setdefault(ctx.params["sha"], []).insert(0, status)
    return 201, status


@route("GET", R + "/commits/{ref}/statuses")
def list_statuses(ctx: Context) -> Answer:
    return 200, list(ctx.repo().statuses.get(ctx.params["ref"], []))


@route("GET", R + "/issues")
def list_issues(ctx: Context) -> Answer:
    repo, shape = ctx.repo(), ctx.shape()
    state = ctx.q("state", "open")
    wanted = {label for label in ctx.q("labels").split(",") if label}
    found = [i for i in sorted(repo.issues.values(), key=lambda i: -i.number)
             if state in ("all", i.state) and wanted <= set(i.labels)]
    return 200, _page(ctx, [shape.issue(repo, i) for i in found])


@route("POST", R + "/issues")
def create_issue(ctx: Context) -> Answer:
    repo = ctx.repo(write=True)
    labels = [lbl if isinstance(lbl, str) else lbl["name"] for lbl in ctx.body.get("labels", [])]
    issue = ctx.state.add_issue(repo, str(ctx.body["title"]), ctx.body.get("body") or "",
                                ctx.identity.login, labels)
    return 201, ctx.shape().issue(repo, issue)


@route("GET", R + "/issues/{issue_number}")
def get_issue(ctx: Context) -> Answer:
    repo = ctx.repo()
    issue = repo.issues.get(int(ctx.params["issue_number"]))
    return (200, ctx.shape().issue(repo, issue)) if issue else NOT_FOUND


@route("PATCH", R + "/issues/{issue_number}")
def update_issue(ctx: Context) -> Answer:
    repo = ctx.repo(write=True)
    issue = repo.issues.get(int(ctx.params["issue_number"]))
    if issue is None:
        return NOT_FOUND
    for key in ("title", "body"):
        if key in ctx.body:
            setattr(issue, key, ctx.body[key] or "")
    if ctx.body.get("state") in ("open", "closed"):
        issue.state = ctx.body["state"]
        issue.closed_at = now_iso() if issue.state == "closed" else None
    issue.updated_at = now_iso()
    return 200, ctx.shape().issue(repo, issue)


@route("GET", R + "/issues/{issue_number}/comments")
def list_comments(ctx: Context) -> Answer:
    repo, shape = ctx.repo(), ctx.shape()
    found = ctx.state.comments_on(repo, int(ctx.params["issue_number"]))
    return 200, _page(ctx, [shape.comment(c) for c in found])


@route("POST", R + "/issues/{issue_number}/comments")
def create_comment(ctx: Context) -> Answer:
    repo = ctx.repo(write=True)
    number = int(ctx.params["issue_number"])
    if number not in repo.issues:
        return NOT_FOUND
    comment = ctx.state.add_comment(repo, number, ctx.body["body"], ctx.identity.login)
    return 201, ctx.shape().comment(comment)


def _comment(ctx: Context, write: bool = False) -> Any:
    repo = ctx.repo(write=write)
    comment = ctx.state.comments.get(int(ctx.params["comment_id"]))
    if comment is None or comment.repo != repo.full_name:
        raise _Stop(NOT_FOUND)
    return comment


@route("GET", R + "/issues/comments/{comment_id}")
def get_comment(ctx: Context) -> Answer:
    return 200, ctx.shape().comment(_comment(ctx))


@route("PATCH", R + "/issues/comments/{comment_id}")
def edit_comment(ctx: Context) -> Answer:
    comment = _comment(ctx, write=True)
    comment.body = ctx.body["body"]
    comment.updated_at = now_iso()
    return 200, ctx.shape().comment(comment)


@route("GET", R + "/issues/comments/{comment_id}/reactions")
def list_reactions(ctx: Context) -> Answer:
    return 200, list(_comment(ctx).reactions)


@route("POST", R + "/issues/comments/{comment_id}/reactions")
def add_reaction(ctx: Context) -> Answer:
    comment = _comment(ctx)
    for reaction in comment.reactions:
        same = reaction["content"] == ctx.body["content"]
        if same and reaction["user"]["login"] == ctx.identity.login:
            return 200, reaction  # GitHub answers 200 for an existing reaction
    reaction = ctx.shape().reaction(ctx.body["content"], ctx.identity.login)
    comment.reactions.append(reaction)
    return 201, reaction


@route("GET", R + "/pulls/{pull_number}")
def get_pull(ctx: Context) -> Answer:
    repo = ctx.repo()
    issue = repo.issues.get(int(ctx.params["pull_number"]))
    if issue is None or issue.pull is None:
        return NOT_FOUND
    return 200, ctx.shape().pull(repo, issue)


@route("POST", R + "/check-runs")
def create_check_run(ctx: Context) -> Answer:
    repo = ctx.repo(write=True)
    run = ctx.shape().check_run(repo, ctx.state.next_id(), dict(ctx.body))
    repo.check_runs[run["id"]] = run
    return 201, run


@route("GET", R + "/check-runs/{check_run_id}")
def get_check_run(ctx: Context) -> Answer:
    run = ctx.repo().check_runs.get(int(ctx.params["check_run_id"]))
    return (200, run) if run else NOT_FOUND


@route("PATCH", R + "/check-runs/{check_run_id}")
def update_check_run(ctx: Context) -> Answer:
    repo = ctx.repo(write=True)
    run = repo.check_runs.get(int(ctx.params["check_run_id"]))
    if run is None:
        return NOT_FOUND
    run.update(ctx.shape().check_run_update(run, dict(ctx.body)))
    return 200, run


def _page(ctx: Context, items: list[Any]) -> list[Any]:
    """One page of ``items``, with GitHub's ``Link`` header when more follow."""
    per_page = int(ctx.q("per_page", "30"))
    page = int(ctx.q("page", "1"))
    if page * per_page < len(items):
        ctx.headers["link"] = (f'<{ctx.base}{ctx.path}?per_page={per_page}&page={page + 1}>; '
                               'rel="next"')
    return items[(page - 1) * per_page: page * per_page]
