"""`flowbot serve`: the webhook service, run pages and API, delivery workers,
run workers and the scheduler, in one process (settings from FLOWBOT_*)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.settings import Settings
from runner.errors import FlowbotError

NO_SECRET = (
    "flowbot serve: FLOWBOT_WEBHOOK_SECRET is not set.\n"
    "Set it to the secret you enter on the GitHub webhook (Settings → Webhooks), e.g.\n"
    "  export FLOWBOT_WEBHOOK_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
)

LOOPBACK_NOTE = (
    "flowbot serve: GitHub sign-in is not configured, so pages and the read API answer "
    "only requests from this machine (loopback).\n"
    "To serve others, set FLOWBOT_OAUTH_CLIENT_ID, FLOWBOT_OAUTH_CLIENT_SECRET and "
    "FLOWBOT_SESSION_SECRET (see README, Web UI)."
)

_WEAKER = {"pids_limit": "a pids limit (FLOWBOT_TASK_PIDS)",
           "no_new_privileges": "no-new-privileges",
           "read_only_root": "a read-only root filesystem",
           "resource_limits": "cpu and memory limits"}


def isolation_note(backend: str) -> str | None:
    """What the configured backend leaves out of a task's isolation, said at start-up
    (flows asking for what it cannot honour are refused; these are the operator's own
    settings, which it silently could not apply)."""
    from runner.backends import capabilities_of

    caps = capabilities_of(backend)
    missing = [words for field, words in _WEAKER.items() if not getattr(caps, field)]
    if not missing:
        return None
    return (f"flowbot serve: the {backend} backend runs tasks without "
            f"{', '.join(missing[:-1]) + ' or ' if len(missing) > 1 else ''}{missing[-1]}; "
            "flows asking for what it cannot honour (network: none, a pool it cannot place) "
            "are refused. See docs/scaling.md for what each backend isolates.")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("serve", help="serve GitHub webhooks, run pages and the scheduler")
    parser.add_argument("--host", help="address to listen on (default FLOWBOT_HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default FLOWBOT_PORT or 8080)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.intake.app import create_app
    from bot.runtime import build_runtime, default_github
    from bot.web.auth import oauth_configured

    try:
        settings = Settings.from_env()
        if not settings.webhook_secret:
            print(NO_SECRET, file=sys.stderr)
            return 2
        # every setting that can refuse is read before the data dir and database are made
        settings.task_limits()
        settings.secret_values()
        github = default_github(settings)
        runtime = build_runtime(settings, github=github)
        app = create_app(settings, runtime.services)
    except FlowbotError as exc:
        print(f"flowbot serve: {exc}", file=sys.stderr)
        return 2
    if not oauth_configured(settings):
        print(LOOPBACK_NOTE, file=sys.stderr)
    if (weaker := isolation_note(settings.backend)) is not None:
        print(weaker, file=sys.stderr)
    runtime.start()
    try:
        uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port,
                    log_level="info", access_log=False)
    finally:
        runtime.stop()
    return 0
