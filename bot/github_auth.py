"""GitHub App authentication: installation tokens, cached until shortly before
they expire, with the time injected so tests can move it.

PyGithub's own ``AppInstallationAuth`` reads the system clock; this cache asks
:class:`~github.GithubIntegration.GithubIntegration` for a token only when the
cached one is missing or about to expire.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import requests
from github import GithubException, GithubIntegration

from bot.github import GitHubError

log = logging.getLogger(__name__)

# Refresh this long before GitHub's expiry so a token never dies mid-request.
REFRESH_MARGIN = timedelta(minutes=5)


T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


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
