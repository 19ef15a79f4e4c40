"""PyGithub implementation of :mod:`bot.github`'s interfaces.

``FLOWBOT_GITHUB_API_URL`` is the base URL (GitHub Enterprise works the same).
Authentication is a token, or a GitHub App whose installation tokens are cached
until shortly before expiry (:mod:`bot.github_auth`). 5xx answers and 403/429
rate limits are retried with backoff by PyGithub's ``GithubRetry``; what still
fails becomes a :class:`~bot.github.GitHubError` whose text never holds a
credential.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from github import Auth, Github, GithubIntegration, GithubRetry

from bot.github_auth import InstallationTokens, guarded, protect_logs, utc_now
from bot.github_repo import PyGithubRepoClient
from bot.settings import Settings
from runner.errors import ConfigError

log = logging.getLogger(__name__)

NO_CREDENTIALS = ("set FLOWBOT_GITHUB_TOKEN, or FLOWBOT_GITHUB_APP_ID with "
                  "FLOWBOT_GITHUB_PRIVATE_KEY (the PEM text or a path to it)")
NEEDS_INSTALLATION = ("as a GitHub App flowbot acts for an installation, and the event "
                      "for {repo} carried no installation id")


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

    @classmethod
    def fast(cls) -> HttpPolicy:
        """No waiting anywhere: for tests against the fake server."""
        return cls(retries=3, backoff_factor=0.0, secondary_rate_wait=0.0,
                   seconds_between_requests=0.0, seconds_between_writes=0.0)

    def retry(self) -> GithubRetry:
        methods = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"})
        return GithubRetry(total=self.retries, backoff_factor=self.backoff_factor,
                           secondary_rate_wait=self.secondary_rate_wait,
                           max_rate_limit_wait=self.max_rate_limit_wait,
                           allowed_methods=methods, status_forcelist=[*range(500, 600), 429])

    def kwargs(self) -> dict[str, object]:
        return {"retry": self.retry(), "timeout": self.timeout,
                "seconds_between_requests": self.seconds_between_requests,
                "seconds_between_writes": self.seconds_between_writes}


class PyGithubClients:
    """The :class:`~bot.github.GitHubClients` factory over PyGithub."""

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
                                  is_app=self.is_app, secrets=secrets)

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
