"""GitHub sign-in through Authlib: ``GET /login`` (the page), ``GET /login/github``
(off to GitHub's authorize URL), ``GET /auth/callback`` (code → token → session) and
``POST /logout``. A forged or replayed ``state`` answers 400 and signs nobody in."""

from __future__ import annotations

import logging
import warnings
from urllib.parse import quote

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.settings import Settings
from bot.web import ui
from bot.web.auth import Access

with warnings.catch_warnings():
    # Authlib warns that it will move from httpx to the "httpx2" fork; httpx still works.
    # Its module turns its warnings on ("always") when loaded: load it first, then ignore.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore")
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.starlette_client import OAuth

log = logging.getLogger(__name__)

SCOPE = "repo read:user"  # private repositories' visibility needs "repo" on an OAuth App
SIGN_IN_FAILED = "GitHub sign-in did not complete ({reason}). Try again."
NOT_CONFIGURED = "GitHub sign-in is not configured; this machine needs none."


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _client(settings: Settings) -> OAuth:
    authorize, token = settings.oauth_urls
    oauth = OAuth()
    oauth.register(
        "github", client_id=settings.oauth_client_id,
        client_secret=settings.oauth_client_secret, authorize_url=authorize,
        access_token_url=token, api_base_url=settings.github_api_url.rstrip("/") + "/",
        client_kwargs={"scope": SCOPE, "token_endpoint_auth_method": "client_secret_post"},
    )
    return oauth


def login_router(settings: Settings, access: Access) -> APIRouter:
    router = APIRouter()
    github = _client(settings).create_client("github") if access.oauth else None
    callback = settings.public_url.rstrip("/") + "/auth/callback"

    @router.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:
        if github is None:
            return ui.message(None, "Sign in", NOT_CONFIGURED, 200, ("/", "Flows"))
        href = f"/login/github?next={quote(safe_next(next), safe='')}"
        return ui.render("login.html", None, href=href, section=None)

    @router.get("/login/github")
    async def login_github(request: Request, next: str | None = None) -> Response:
        if github is None:
            return RedirectResponse("/", status_code=303)
        request.session["next"] = safe_next(next)
        answer: Response = await github.authorize_redirect(request, callback)
        return answer

    @router.get("/auth/callback")
    async def auth_callback(request: Request) -> Response:
        if github is None:
            return RedirectResponse("/", status_code=303)
        try:
            token = await github.authorize_access_token(request)
        except OAuthError as exc:  # forged state, bad code, GitHub said no
            log.info("sign-in refused", extra={"reason": exc.error})
            return ui.message(None, "Sign-in failed", SIGN_IN_FAILED.format(reason=exc.error),
                              400, ("/login", "Sign in"))
        target = safe_next(request.session.get("next"))
        login = await run_in_threadpool(access.sign_in, request.session,
                                        str(token.get("access_token", "")))
        if login is None:
            return ui.message(None, "Sign-in failed",
                              SIGN_IN_FAILED.format(reason="GitHub refused the token"), 400,
                              ("/login", "Sign in"))
        return RedirectResponse(target, status_code=303)

    @router.post("/logout")
    def logout(request: Request) -> Response:
        if "session" in request.scope:
            access.sign_out(request.session)
        return RedirectResponse("/login" if github else "/", status_code=303)

    return router
