"""The FastAPI app: a thin ``POST /webhook`` plus GitHub sign-in (a signed session
cookie, only when configured), ``/static``, the pages and the JSON API.

The webhook route only reads the raw body, checks its size and signature,
parses it, records the delivery durably and wakes a worker. A redelivery
(same ``X-GitHub-Delivery``) is answered "duplicate", unless the delivery had
failed for good: then it is queued again and answered "accepted". Everything else
happens in :mod:`bot.intake.worker` through the router. It is a plain ASGI handler
rather than a FastAPI endpoint: it needs no validation or dependencies, and
skipping that machinery roughly halves the CPU each delivery costs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Route

from bot.intake.group_commit import Intake
from bot.services import Services
from bot.settings import Settings
from bot.web.auth import Access
from bot.web.flow_page import flow_router
from bot.web.lists import lists_router
from bot.web.login import login_router
from bot.web.metrics import metrics_router
from bot.web.pages import pages_router
from bot.web.replicas_page import replicas_router
from bot.web.ui import static_files
from runner.errors import ConfigError

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
NO_SECRET = "set FLOWBOT_WEBHOOK_SECRET to the secret configured on the GitHub webhook"
TOO_LARGE = "payload larger than 25 MB"
BAD_SIGNATURE = "bad signature"
NOT_JSON = "body is not JSON"
NOT_OBJECT = "body is not a JSON object"
MISSING_HEADERS = "missing X-GitHub-Event or X-GitHub-Delivery"
NOT_RECORDED = "could not record the delivery; redeliver it later"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """True if ``header`` is ``sha256=<hex HMAC-SHA256 of body>`` under ``secret``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _reply(send: Send, status: int, message: str) -> int:
    body = json.dumps({"message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    return status


async def _read_capped(receive: Receive, declared: bytes | None) -> bytes | None:
    """The whole body, or None if it exceeds :data:`MAX_BODY` (or the client left)."""
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class WebhookEndpoint:
    """``POST /webhook`` as an ASGI app: size cap, HMAC, JSON, durable record, 202.
    ``took`` is told how long each answer took and its status (intake latency)."""

    def __init__(self, secret: bytes, intake: Intake, notify: Callable[[], None],
                 took: Callable[[float, int], None] | None = None) -> None:
        self._secret = secret
        self._intake = intake
        self._notify = notify
        self._took = took

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = await self._answer(scope, receive, send)
        if self._took is not None:
            self._took(time.perf_counter() - started, status)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> int:
        headers = dict(scope["headers"])
        body = await _read_capped(receive, headers.get(b"content-length"))
        if body is None:
            return await _reply(send, 413, TOO_LARGE)
        signature = headers.get(b"x-hub-signature-256", b"").decode("latin-1")
        if not signature_ok(self._secret, body, signature):
            return await _reply(send, 401, BAD_SIGNATURE)
        try:
            payload: Any = orjson.loads(body)  # also refuses invalid UTF-8
        except orjson.JSONDecodeError:
            return await _reply(send, 400, NOT_JSON)
        if not isinstance(payload, dict):
            return await _reply(send, 400, NOT_OBJECT)
        event = headers.get(b"x-github-event", b"").decode("latin-1")
        delivery_id = headers.get(b"x-github-delivery", b"").decode("latin-1")
        if not event or not delivery_id:
            return await _reply(send, 400, MISSING_HEADERS)
        return await self._record(send, delivery_id, event, body, payload)

    async def _record(self, send: Send, delivery_id: str, event: str, body: bytes,
                      payload: dict[str, Any]) -> int:
        try:
            new = await self._intake.record(delivery_id, event, body, payload)
        except Exception:  # not recorded, so not acknowledged: GitHub may redeliver
            log.exception("delivery not recorded", extra={"delivery": delivery_id})
            return await _reply(send, 503, NOT_RECORDED)
        if not new:
            return await _reply(send, 200, "duplicate")
        self._notify()
        return await _reply(send, 202, "accepted")


class FlowbotApp(FastAPI):
    """FastAPI, except that ``POST /webhook`` goes straight to its endpoint: it has no
    use for the middleware stack (errors, body limits, telemetry), which otherwise
    costs as much CPU per delivery as the endpoint itself."""

    webhook: WebhookEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.webhook is not None and scope["type"] == "http"
                and scope["path"] == "/webhook" and scope["method"] == "POST"
                and not scope.get("root_path")):
            return await self.webhook(scope, receive, send)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, services: Services) -> FastAPI:
    """The web app over ``services``; refuses to build without a webhook secret."""
    if not settings.webhook_secret:
        raise ConfigError("FLOWBOT_WEBHOOK_SECRET", NO_SECRET)
    app = FlowbotApp(title="flowbot", docs_url=None, redoc_url=None, openapi_url=None)
    endpoint = WebhookEndpoint(settings.webhook_secret.encode(), Intake(services.deliveries),
                               services.notify_work, took=services.metrics.intake_took)
    app.webhook = endpoint
    app.router.routes.append(Route("/webhook", endpoint, methods=["POST"]))  # other methods
    access = Access(services)  # refuses GitHub sign-in configured halfway
    if access.oauth:
        app.add_middleware(
            SessionMiddleware, secret_key=settings.session_secret, session_cookie="flowbot",
            max_age=settings.session_max_age_seconds, same_site="lax",
            https_only=settings.public_url.startswith("https://"))
    app.mount("/static", static_files(), name="static")
    app.include_router(login_router(settings, access))
    app.include_router(pages_router(services, access))
    app.include_router(flow_router(services, access))
    app.include_router(metrics_router(services.metrics, partial(_sees_all, access)))
    app.include_router(lists_router(services, access))
    app.include_router(replicas_router(services, access))
    return app


def _sees_all(access: Access, request: Request) -> bool:
    """True for the readers of ``/metrics``: the API token, or this machine without
    GitHub sign-in (a signed-in person sees only some repositories; the series name all)."""
    viewer = access.viewer(request.scope, request.scope.get("session"))
    return viewer is not None and viewer.repos is None
