"""The FastAPI app: a thin ``POST /webhook`` plus the run pages and JSON API.

The webhook route only reads the raw body, checks its size and signature,
parses it, records the delivery durably and wakes a worker. Everything else
happens in :mod:`bot.worker` through the router.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.intake import Intake
from bot.pages import pages_router
from bot.services import Services
from bot.settings import Settings
from runner.errors import ConfigError

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
NO_SECRET = "set FLOWBOT_WEBHOOK_SECRET to the secret configured on the GitHub webhook"


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """True if ``header`` is ``sha256=<hex HMAC-SHA256 of body>`` under ``secret``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _reply(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def _read_capped(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, services: Services) -> FastAPI:
    """The web app over ``services``; refuses to build without a webhook secret."""
    if not settings.webhook_secret:
        raise ConfigError("FLOWBOT_WEBHOOK_SECRET", NO_SECRET)
    secret = settings.webhook_secret.encode()
    app = FastAPI(title="flowbot", docs_url=None, redoc_url=None, openapi_url=None)
    intake = Intake(services.deliveries)

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        body = await _read_capped(request)
        if body is None:
            return _reply(413, "payload larger than 25 MB")
        if not signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
            return _reply(401, "bad signature")
        try:
            payload: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _reply(400, "body is not JSON")
        if not isinstance(payload, dict):
            return _reply(400, "body is not a JSON object")
        event = request.headers.get("x-github-event", "")
        delivery_id = request.headers.get("x-github-delivery", "")
        if not event or not delivery_id:
            return _reply(400, "missing X-GitHub-Event or X-GitHub-Delivery")
        try:
            new = await intake.record(delivery_id, event, body, payload)
        except Exception:  # not recorded, so not acknowledged: GitHub may redeliver
            log.exception("delivery not recorded", extra={"delivery": delivery_id})
            return _reply(503, "could not record the delivery; redeliver it later")
        if not new:
            return _reply(200, "duplicate")
        services.notify_work()
        return _reply(202, "accepted")

    app.include_router(pages_router(services))
    return app
