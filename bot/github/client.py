"""PyGithub implementation of :mod:`bot.github.interfaces`'s interfaces.

``FLOWBOT_GITHUB_API_URL`` is the base URL (GitHub Enterprise works the same).
Authentication is a token, or a GitHub App whose installation tokens are cached
until shortly before expiry, with the time injected so tests can move it
(PyGithub's own ``AppInstallationAuth`` reads the system clock). 5xx answers
and 403/429 rate limits are retried with backoff by PyGithub's ``GithubRetry``,
waiting what GitHub's ``Retry-After`` asks (up to ``max_rate_limit_wait``);
writes (POST/PATCH/PUT/DELETE) of one installation go out at least
``seconds_between_writes`` apart, as GitHub's secondary rate limits want;
what still fails becomes a :class:`~bot.github.interfaces.GitHubError` whose text never
holds a credential, and PyGithub's debug log never shows a new token.

Objects are lazy (``Github(lazy=True)``): building a repository, issue or
comment handle sends nothing; only the call that acts does.

- :class:`PyGithubClients`: the :class:`~bot.github.interfaces.GitHubClients` factory.
- :class:`PyGithubRepoClient`: the :class:`~bot.github.interfaces.RepoClient` of one repository.
- :class:`InstallationTokens`: the App's installation tokens, cached.
- :func:`guarded`: a GitHub call whose failure becomes a ``GitHubError``.

Each repository call is told to ``PyGithubClients.on_call`` (set at wiring time,
for ``/metrics``): its action, its outcome (``ok``, the HTTP status, or ``error``
without an answer) and the rate-limit requests left as of GitHub's latest answer.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

import requests
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry
from github.GithubObject import NotSet
from github.IssueComment import IssueComment

from bot.github.interfaces import (
    ROLES,
    Annotation,
    Comment,
    GitHubError,
    PullInfo,
    trim_body,
    trim_description,
    with_marker,
)
from bot.settings import Settings
from runner.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
CallObserver = Callable[[str, str, int | None], None]  # (action, outcome, rate-limit left)

NO_CREDENTIALS = ("set FLOWBOT_GITHUB_TOKEN, or FLOWBOT_GITHUB_APP_ID with "
                  "FLOWBOT_GITHUB_PRIVATE_KEY (the PEM text or a path to it)")
NEEDS_INSTALLATION = ("as a GitHub App flowbot acts for an installation, and the event "
                      "for {repo} carried no installation id")
# Refresh this long before GitHub's expiry so a token never dies mid-request.
REFRESH_MARGIN = timedelta(minutes=5)
ANNOTATIONS_PER_REQUEST = 50  # GitHub's cap per check-run request
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HttpPolicy:
    """Retries, backoff and pacing of GitHub requests (tests make them instant)."""

    retries: int = 5
    backoff_factor: float = 1.0  # urllib3: 0s, 2s, 4s, … between retries
    secondary_rate_wait: float = 60.0  # GitHub asks for a minute after a secondary limit
    max_rate_limit_wait: float = 600.0  # beyond this a rate limit is an error, not a wait
    seconds_between_requests: float = 0.25  # GitHub's advice: serial, paced requests
    seconds_between_writes: float = 1.0
    timeout: int = 15
    sleep: Callable[[float], None] = time.sleep  # the waits between retries (tests record them)

    @classmethod
    def fast(cls) -> HttpPolicy:
        """No waiting anywhere: for tests against the fake server."""
        return cls(retries=3, backoff_factor=0.0, secondary_rate_wait=0.0,
                   seconds_between_requests=0.0, seconds_between_writes=0.0)

    def retry(self) -> GithubRetry:
        methods = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"})
        return _Retry(total=self.retries, backoff_factor=self.backoff_factor,
                      secondary_rate_wait=self.secondary_rate_wait,
                      max_rate_limit_wait=self.max_rate_limit_wait,
                      retry_after_max=int(self.max_rate_limit_wait),
                      allowed_methods=methods, status_forcelist=[*range(500, 600), 429],
                      sleep=self.sleep)

    def kwargs(self) -> dict[str, object]:
        return {"retry": self.retry(), "timeout": self.timeout,
                "seconds_between_requests": self.seconds_between_requests,
                "seconds_between_writes": self.seconds_between_writes}


class _Retry(GithubRetry):
    """PyGithub's retry (403/429 with ``Retry-After`` or a rate-limit message, 5xx),
    waiting through the policy's ``sleep``; urllib3 sleeps ``Retry-After`` when
    given, else the backoff GithubRetry works out."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        self._sleep = sleep
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> Self:
        kw["sleep"] = self._sleep
        return super().new(**kw)

    def sleep_for_retry(self, response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if not retry_after:
            return False  # no Retry-After (or 0): the backoff decides
        self._sleep(retry_after)
        return True

    def _sleep_backoff(self) -> None:
        backoff = self.get_backoff_time()
        if backoff > 0:
            self._sleep(backoff)


class PyGithubClients:
    """The :class:`~bot.github.interfaces.GitHubClients` factory over PyGithub."""

    def __init__(self, api_url: str, *, token: str = "", app_id: str = "",
                 private_key: str = "", policy: HttpPolicy | None = None,
                 now: Callable[[], datetime] = utc_now) -> None:
        protect_logs()
        self._api_url = api_url.rstrip("/")
        self._policy = policy or HttpPolicy()
        self._lock = threading.Lock()
        self._clients: dict[int | None, tuple[str, Github]] = {}
        self._tokens: InstallationTokens | None = None
        self._token = token
        self._login: str | None = None
        self.on_call: CallObserver | None = None  # told of every repository call
        if app_id:
            auth = Auth.AppAuth(app_id, _read_key(private_key))
            integration = GithubIntegration(base_url=self._api_url, auth=auth,
                                            **self._policy.kwargs())  # type: ignore[arg-type]
            self._tokens = InstallationTokens(integration, now)
        elif not token:
            raise ConfigError("FLOWBOT_GITHUB_TOKEN", NO_CREDENTIALS)

    @classmethod
    def from_settings(cls, settings: Settings, *, policy: HttpPolicy | None = None,
                      now: Callable[[], datetime] = utc_now) -> PyGithubClients:
        return cls(settings.github_api_url, token=settings.github_token,
                   app_id=settings.github_app_id, private_key=settings.github_private_key,
                   policy=policy, now=now)

    @property
    def is_app(self) -> bool:
        return self._tokens is not None

    def for_repo(self, full_name: str, installation_id: int | None) -> PyGithubRepoClient:
        token = self.git_token(installation_id, repo=full_name)
        secrets = [s for s in (token, self._token) if s]
        github = self._github(installation_id if self.is_app else None, token)
        return PyGithubRepoClient(github, full_name, self._own_login,
                                  is_app=self.is_app, secrets=secrets, on_call=self.on_call)

    def git_token(self, installation_id: int | None, repo: str = "") -> str:
        """The token requests (and https clones) for ``installation_id`` use."""
        if self._tokens is None:
            return self._token  # token auth: one token for everything
        if installation_id is None:
            raise ConfigError("installation.id", NEEDS_INSTALLATION.format(repo=repo or "?"))
        return self._tokens.token(installation_id)

    def _github(self, key: int | None, token: str) -> Github:
        """One PyGithub client per installation, replaced when its token rotates."""
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None and cached[0] == token:
                return cached[1]  # same token: reuse its connection pool and pacing
            client = Github(base_url=self._api_url, auth=Auth.Token(token), lazy=True,
                            per_page=100, **self._policy.kwargs())  # type: ignore[arg-type]
            self._clients[key] = (token, client)
            return client

    def _own_login(self) -> str:
        """Whose comments are flowbot's: the token's user, or ``<slug>[bot]``."""
        if self._tokens is not None:
            return self._tokens.bot_login()
        with self._lock:
            if self._login is None:
                github = Github(base_url=self._api_url, auth=Auth.Token(self._token),
                                **self._policy.kwargs())  # type: ignore[arg-type]
                self._login = guarded("user lookup", lambda: github.get_user().login,
                                      [self._token])
            return self._login


def _read_key(value: str) -> str:
    """The private key PEM: given inline, or as the path of a file holding it."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    path = Path(value)
    if not value or not path.is_file():
        raise ConfigError("FLOWBOT_GITHUB_PRIVATE_KEY",
                          "expected the App's private key (PEM text) or a path to it")
    return path.read_text(encoding="utf-8")


# --- one repository -----------------------------------------------------------

class PyGithubRepoClient:
    """Implements :class:`bot.github.interfaces.RepoClient`; see its docstrings."""

    def __init__(self, github: Github, full_name: str, own_login: Callable[[], str], *,
                 is_app: bool, secrets: Sequence[str] = (),
                 on_call: CallObserver | None = None) -> None:
        self.full_name = full_name
        self._on_call = on_call
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
        try:
            result = guarded(action, func, self._secrets, f"repository {self.full_name}")
        except GitHubError as exc:
            self._told(action, "error" if exc.status is None else str(exc.status))
            raise
        self._told(action, "ok")
        return result

    def _told(self, action: str, outcome: str) -> None:
        if self._on_call is not None:  # -1 until GitHub has answered with the headers
            self._on_call(action, outcome, self._repo.requester.rate_limiting[0])


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


# --- App installation tokens, errors and logs ---------------------------------

class _NoTokenResponses(logging.Filter):
    """Drops PyGithub's debug lines of installation-token requests: their logged
    response body is the new token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "access_tokens" not in record.getMessage()


_FILTER = _NoTokenResponses()


def protect_logs() -> None:
    """Keep credentials out of PyGithub's debug log (idempotent)."""
    requester_log = logging.getLogger("github.Requester")
    if _FILTER not in requester_log.filters:
        requester_log.addFilter(_FILTER)


def guarded(action: str, func: Callable[[], T], secrets: Sequence[str] = (),
            where: str = "") -> T:
    """Run ``func``; GitHub failures become :class:`GitHubError`, secrets masked."""
    try:
        return func()
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        detail = str(data.get("message") or exc.message or "error")
        raise GitHubError(action, exc.status, _mask(detail, secrets, where)) from None
    except requests.RequestException as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise GitHubError(action, None, _mask(detail, secrets, where)) from None


def _mask(text: str, secrets: Sequence[str], where: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return f"{text} ({where})" if where else text


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"CachedToken(token=***, expires_at={self.expires_at.isoformat()})"


class InstallationTokens:
    """Installation access tokens per installation id, thread-safe."""

    def __init__(self, integration: GithubIntegration,
                 now: Callable[[], datetime] = utc_now) -> None:
        self._integration = integration
        self._now = now
        self._lock = threading.Lock()
        self._tokens: dict[int, CachedToken] = {}
        self._slug: str | None = None

    def token(self, installation_id: int) -> str:
        """A valid token for ``installation_id``, fetched only when needed."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - REFRESH_MARGIN > self._now():
                return cached.token  # still fresh
            auth = guarded("installation token",
                           lambda: self._integration.get_access_token(installation_id),
                           where=f"installation {installation_id}")
            expires = auth.expires_at
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            self._tokens[installation_id] = CachedToken(auth.token, expires)
            log.info("installation token fetched", extra={
                "installation_id": installation_id, "expires_at": expires.isoformat()})
            return auth.token

    def bot_login(self) -> str:
        """The login the App's comments carry: ``<slug>[bot]``."""
        with self._lock:
            if self._slug is None:
                self._slug = guarded("app lookup", lambda: self._integration.get_app().slug)
            return f"{self._slug}[bot]"
