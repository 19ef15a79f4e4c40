"""Who sees what: GitHub sign-in, the loopback rule, the API's bearer token.

With ``FLOWBOT_OAUTH_CLIENT_ID`` set, people sign in through GitHub's OAuth web
flow (Authlib) and see only the repositories GitHub lets them read. The session
cookie (Starlette's, signed with ``FLOWBOT_SESSION_SECRET``, HttpOnly, SameSite=Lax,
expiring after ``FLOWBOT_SESSION_MAX_AGE_SECONDS``) holds only a random session id:
never a token. The session itself is a database row (:mod:`bot.web.sessions`), so
every replica, and a restarted bot, serves it: the login, the readable repositories
with when they were checked, and the user's GitHub token encrypted at rest, used to
check the repositories again every ``FLOWBOT_ACCESS_TTL_SECONDS``. The row expires
with the cookie; signing out deletes it, everywhere at once.

Without OAuth (the demo, a laptop) pages and the read API answer only requests
from the loopback address. ``Authorization: Bearer <FLOWBOT_API_TOKEN>`` reads
everything, as the API's writes already require.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import select

from bot.services import Services
from bot.settings import Settings
from bot.web.sessions import SessionStore, WebSession
from runner.errors import ConfigError
from runner.scheduling.registry import registered_flows
from runner.state.run_tables import runs

log = logging.getLogger(__name__)

NO_SESSION_SECRET = ("set FLOWBOT_SESSION_SECRET (e.g. 64 random hex characters) to sign "
                     "the session cookies of GitHub sign-in")
NO_CLIENT_SECRET = "set FLOWBOT_OAUTH_CLIENT_SECRET to the OAuth App's client secret"
LOOPBACK_ONLY = ("flowbot answers pages and the read API only from this machine until "
                 "GitHub sign-in is configured (FLOWBOT_OAUTH_CLIENT_ID, "
                 "FLOWBOT_OAUTH_CLIENT_SECRET, FLOWBOT_SESSION_SECRET)")
SIGN_IN_NEEDED = "sign in at /login, or send Authorization: Bearer <FLOWBOT_API_TOKEN>"
GITHUB_TIMEOUT = 10.0


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a GitHub login (seeing ``repos``), this machine, or the API token."""

    name: str
    repos: frozenset[str] | None  # None: every repository
    signed_in: bool = False  # a GitHub login (has a session to sign out of)

    def sees(self, repo: str) -> bool:
        return self.repos is None or repo in self.repos

    def visible(self, repos: Iterable[str]) -> list[str]:
        return [repo for repo in repos if self.sees(repo)]


LOCAL = Viewer("this machine", None)
API_TOKEN = Viewer("API token", None)


def oauth_configured(settings: Settings) -> bool:
    """True when GitHub sign-in is set up; ConfigError when it is set up halfway."""
    if not settings.oauth_client_id:
        return False
    if not settings.oauth_client_secret:
        raise ConfigError("FLOWBOT_OAUTH_CLIENT_SECRET", NO_CLIENT_SECRET)
    if not settings.session_secret:
        raise ConfigError("FLOWBOT_SESSION_SECRET", NO_SESSION_SECRET)
    return True


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ::ffff:127.x (never a name such as "localhost")."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def known_repos(services: Services) -> list[str]:
    """Every repository flowbot holds anything of: registered flows or runs."""
    query = select(registered_flows.c.repo).union(select(runs.c.repo))
    with services.engine.connect() as conn:
        return sorted({row[0] for row in conn.execute(query)})


def token_ok(expected: str, header: str | None) -> bool:
    """True if ``header`` is ``Bearer <expected>`` (constant time, length hidden too)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    digest = hashlib.sha256  # equal-length inputs: compare_digest then leaks nothing
    return hmac.compare_digest(digest(given.strip().encode()).digest(),
                               digest(expected.encode()).digest())


class GitHubUser:
    """The few REST calls made with a signed-in user's own token."""

    def __init__(self, api_url: str, token: str) -> None:
        self._api = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}",
                         "Accept": "application/vnd.github+json"}

    def login(self) -> str | None:
        """The user's login, or None when GitHub no longer takes the token."""
        with httpx.Client(timeout=GITHUB_TIMEOUT) as client:
            answer = client.get(f"{self._api}/user", headers=self._headers)
        if answer.status_code == 401:
            return None
        answer.raise_for_status()
        login = answer.json().get("login")
        return login if isinstance(login, str) else None

    def readable(self, repos: Iterable[str]) -> frozenset[str]:
        """Those of ``repos`` GitHub shows the user (a repository hidden is a 404)."""
        seen = set()
        with httpx.Client(timeout=GITHUB_TIMEOUT) as client:
            for repo in repos:
                answer = client.get(f"{self._api}/repos/{quote(repo)}", headers=self._headers)
                if answer.status_code == 200:
                    seen.add(repo)
        return frozenset(seen)


class Access:
    """Turns a request into a :class:`Viewer` (or None: not allowed to look)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._settings = services.settings
        self.oauth = oauth_configured(self._settings)
        self._sessions = SessionStore(services.engine, self._settings.session_secret,
                                      self._settings.session_max_age_seconds)

    def viewer(self, scope: Any, session: dict[str, Any] | None) -> Viewer | None:
        """The viewer of a request (its ASGI scope and session); None: refused."""
        if self._bearer_ok(scope):
            return API_TOKEN
        if not self.oauth:
            client = scope.get("client")
            return LOCAL if client and is_loopback(client[0]) else None
        if session is None or "sid" not in session:
            return None  # not signed in
        session_id = str(session["sid"])
        stored = self._sessions.get(session_id, self._now())
        if stored is None:
            session.clear()  # expired, or signed out (on any replica)
            return None
        repos: frozenset[str] | None = stored.repos
        age = (self._now() - stored.checked_at).total_seconds()
        if age > self._settings.access_ttl_seconds:
            repos = self._recheck(session, session_id, stored)
            if repos is None:
                return None
        return Viewer(stored.login, repos, signed_in=True)

    def sign_in(self, session: dict[str, Any], token: str) -> str | None:
        """Start a session for the holder of ``token``: its login, or None if refused."""
        user = GitHubUser(self._settings.github_api_url, token)
        login = user.login()
        if login is None:
            return None
        repos = user.readable(known_repos(self._services))
        session.clear()
        session["sid"] = self._sessions.create(login, token, repos, self._now())
        log.info("signed in", extra={"login": login})
        return login

    def sign_out(self, session: dict[str, Any]) -> None:
        """End the session: its row goes (every replica forgets it), the cookie empties."""
        if "sid" in session:
            self._sessions.delete(str(session["sid"]))
        session.clear()

    def _recheck(self, session: dict[str, Any], session_id: str,
                 stored: WebSession) -> frozenset[str] | None:
        """The session's repositories checked again with the user's token (None: the
        token was revoked or is another user's now, and the session is over)."""
        user = GitHubUser(self._settings.github_api_url, stored.token)
        if user.login() != stored.login:
            self.sign_out(session)  # revoked: sign in again
            return None
        repos = user.readable(known_repos(self._services))
        self._sessions.rechecked(session_id, repos, self._now())
        return repos

    def _bearer_ok(self, scope: Any) -> bool:
        expected = self._settings.api_token
        if not expected:
            return False
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization")
        return header is not None and token_ok(expected, header.decode("latin-1"))

    def _now(self) -> datetime:
        return self._services.clock.now()
