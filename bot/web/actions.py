"""Write actions from the pages (Run, Pause/Resume, Cancel, Re-run): who may, and CSRF.

:meth:`Actions.require_writer` is the gate of every ``POST`` a page's form sends.
It answers the refusal (a :class:`~starlette.responses.Response`) or a
:class:`Write` (the viewer and the posted form) to go ahead:

- **who**: a signed-in GitHub user needs ``admin``, ``maintain`` or ``write`` on
  the repository, asked with the bot's own GitHub client
  (:meth:`~bot.github.interfaces.RepoClient.permission_of`, as comment commands
  are checked) and remembered for :data:`WRITE_CHECK_SECONDS` per login and
  repository. The API's bearer token may write (the JSON API's writes take it
  already), and so may this machine when GitHub sign-in is not configured:
  loopback is then the only way in, and whoever is on the machine can run
  ``flowbot run`` anyway. A viewer who may not read the repository may not write.
- **CSRF**: every form carries :data:`CSRF_FIELD` (:meth:`Actions.csrf_token`,
  rendered as a hidden input); a ``POST`` without the right one gets 403. With
  sign-in the token lives in the signed session (a new one at each sign-in);
  without sign-in there is one identity, this machine, and the token is derived
  from the secret every replica shares (:mod:`bot.web.shared_secret`), so a
  form one replica served is accepted by another behind the same address.
  Neither can be read by another site (no CORS), so it cannot be forged. A
  bearer-token request is not checked: browsers never add an ``Authorization``
  header on their own.

Forms are read as ``application/x-www-form-urlencoded`` (at most
:data:`MAX_FORM_BYTES`); the flow page's Run form alone is multipart (file
inputs are uploads) and has its own gate in :mod:`bot.web.flow_page`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.github.interfaces import GitHubError
from bot.services import Services
from bot.web import ui
from bot.web.auth import API_TOKEN, LOOPBACK_ONLY, Access, Viewer
from bot.web.shared_secret import derived, shared_secret

log = logging.getLogger(__name__)

WRITERS = frozenset({"admin", "maintain", "write"})  # as comment commands require
WRITE_CHECK_SECONDS = 60.0  # a login's permission on a repository is asked again after this
CSRF_FIELD = "csrf"
CSRF_LABEL = "flowbot csrf without sign-in v1"  # what the shared secret is derived for
MAX_FORM_BYTES = 64 * 1024
REFUSED = "Not allowed"
BAD_CSRF = ("This form did not come from this page of flowbot, or its page is too old: "
            "reload the page and try again.")
NOT_WRITER = ("{login} needs write permission on {repo} for this (GitHub says: {permission}). "
              "Ask a maintainer of {repo}.")
NOT_CHECKED = "GitHub did not answer whether {login} may write to {repo}: try again shortly."
FORM_TOO_LARGE = "The form is larger than {limit} bytes."


@dataclass(frozen=True)
class Write:
    """A write action allowed to go ahead: who, and what their form said."""

    viewer: Viewer
    form: dict[str, str]


class Actions:
    """The write gate of the pages; make one per app (its cache is per instance)."""

    def __init__(self, services: Services, access: Access) -> None:
        self._services = services
        self._access = access
        self._checked: dict[tuple[str, str], tuple[str, float]] = {}  # (login, repo)
        self._lock = threading.Lock()

    # --- who ---------------------------------------------------------------

    def permission(self, viewer: Viewer, repo: str) -> str:
        """``viewer``'s permission on ``repo``: a GitHub role, or ``"write"`` for
        this machine and the API token. Raises GitHubError when GitHub fails."""
        if not viewer.sees(repo):
            return "none"
        if not viewer.signed_in:
            return "write" if viewer.repos is None else "none"  # this machine, the token
        key = (viewer.name, repo)
        now = self._now()
        with self._lock:
            cached = self._checked.get(key)
        if cached is not None and now - cached[1] < WRITE_CHECK_SECONDS:
            return cached[0]
        permission = self._services.client(repo, None).permission_of(viewer.name)
        with self._lock:
            self._checked[key] = (permission, now)
        return permission

    def may_write(self, viewer: Viewer, repo: str) -> bool:
        """True if ``viewer`` may write to ``repo``; False also when GitHub fails
        (a page then shows no write buttons rather than failing)."""
        try:
            return self.permission(viewer, repo) in WRITERS
        except GitHubError:
            log.warning("permission check failed", extra={"repo": repo})
            return False

    # --- CSRF --------------------------------------------------------------

    @cached_property
    def _local_token(self) -> str:
        """Without sign-in: the same token on every replica (read at first use)."""
        return derived(shared_secret(self._services.settings.data_dir), CSRF_LABEL)

    def csrf_token(self, request: Request) -> str:
        """The token this request's forms carry (created on first use)."""
        session = request.scope.get("session")
        if session is None:
            return self._local_token  # no sign-in: one identity, one token for all replicas
        token = session.get(CSRF_FIELD)
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(32)
            session[CSRF_FIELD] = token
        return token

    def csrf_ok(self, request: Request, viewer: Viewer, given: str | None) -> bool:
        if viewer is API_TOKEN:
            return True  # a header no browser adds by itself: no cross-site forgery
        session = request.scope.get("session")
        expected = self._local_token if session is None else session.get(CSRF_FIELD)
        if not isinstance(expected, str) or not expected or not given:
            return False
        return hmac.compare_digest(expected.encode(), given.encode())

    def form_context(self, request: Request, viewer: Viewer, repo: str) -> dict[str, Any]:
        """What a template needs for its write buttons: ``can_write`` and ``csrf``."""
        can_write = self.may_write(viewer, repo)
        return {"can_write": can_write, "csrf": self.csrf_token(request) if can_write else ""}

    # --- the gate ----------------------------------------------------------

    async def require_writer(self, request: Request, repo: str) -> Write | Response:
        """The gate of a page's ``POST`` on ``repo``: a :class:`Write`, or the
        refusal (sign in, 403 with the reason, 413 for an oversized form)."""
        viewer = self._access.viewer(request.scope, request.scope.get("session"))
        if viewer is None:
            if self._access.oauth:
                back = request.headers.get("referer") or "/"
                return RedirectResponse(f"/login?next={quote(_path_of(back), safe='')}",
                                        status_code=303)
            return ui.message(None, ui.NOT_HERE, LOOPBACK_ONLY, 403)
        form = await posted_form(request)
        if form is None:
            return ui.message(viewer, REFUSED, FORM_TOO_LARGE.format(limit=MAX_FORM_BYTES), 413)
        if not self.csrf_ok(request, viewer, form.get(CSRF_FIELD)):
            log.warning("write refused: CSRF token missing or wrong", extra={"repo": repo})
            return ui.message(viewer, REFUSED, BAD_CSRF, 403)
        try:
            permission = await run_in_threadpool(self.permission, viewer, repo)
        except GitHubError:
            return ui.message(viewer, REFUSED,
                              NOT_CHECKED.format(login=viewer.name, repo=repo), 503)
        if permission not in WRITERS:
            log.info("write refused: no write permission",
                     extra={"repo": repo, "login": viewer.name, "permission": permission})
            return ui.message(viewer, REFUSED, NOT_WRITER.format(
                login=viewer.name, repo=repo, permission=permission), 403)
        return Write(viewer, form)

    def _now(self) -> float:
        return self._services.clock.now().timestamp()


async def posted_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form's fields (the last value of each); None when too large."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return dict(pairs)


def _path_of(url: str) -> str:
    """The path of a Referer (never another site): where to come back after sign-in."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return "/"
    return path + (f"?{parts.query}" if parts.query else "")
