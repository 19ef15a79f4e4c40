"""What the web UI's tests share: a bot with flows in three repositories, GitHub
sign-in configured against the fake GitHub, and the app served over real HTTP
(for the browser). ``ana`` reads ``acme/flows`` (private, collaborator) and the
public ``open/tools``; ``zeta/secret`` is private and not hers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.services import Services
from runner.running.logstore import log_path
from runner.state.records import Status, Trigger, TriggerType
from runner.validation.validate import validate_files
from tests.clock import FakeClock
from tests.fakegithub.server import FakeGitHub
from tests.fakes import FakeRuns, make_services
from tests.polling import wait_until

CLIENT_ID, CLIENT_SECRET = "Iv1.flowbot-ui", "oauth-client-s3cret"
USER = "ana"
MINE, PUBLIC, NOT_MINE = "acme/flows", "open/tools", "zeta/secret"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
FLOW = """id: {id}
description: {description}
triggers:
  - {{id: hourly, type: schedule, cron: "@hourly", timezone: Europe/Paris}}
tasks:
  - {{id: build, image: "busybox:latest", commands: [echo hi]}}
"""


def _flow(flow_id: str, description: str) -> dict[str, bytes]:
    text = FLOW.format(id=flow_id, description=description).encode()
    return {f"flows/{flow_id}.yml": text}


def arrange_github(fake: FakeGitHub) -> None:
    """The fake's repositories, the OAuth App, and ``ana`` signed in to GitHub."""
    fake.add_repo(MINE, private=True)
    fake.add_collaborator(MINE, USER, "read")
    fake.add_repo(PUBLIC)
    fake.add_repo(NOT_MINE, private=True)
    fake.add_oauth_app(CLIENT_ID, CLIENT_SECRET)
    fake.sign_in_as(USER)


def ui_services(engine: Engine, data_dir: Path, fake: FakeGitHub | None,
                public_url: str = "http://flowbot.test") -> Services:
    """A bot whose registry holds a flow in each repository, with runs of ``nightly``;
    GitHub sign-in is configured when ``fake`` is given."""
    svc = make_services(engine, FakeClock(NOW), data_dir=data_dir)
    if fake is not None:
        svc.settings = replace(
            svc.settings, oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET,
            session_secret="session-s3cret-for-tests", github_api_url=fake.url,
            public_url=public_url)
    for repo, flow_id in ((MINE, "nightly"), (PUBLIC, "lint"), (NOT_MINE, "payroll")):
        svc.registry.sync(repo, "a" * 40,
                          validate_files(_flow(flow_id, f"the {flow_id} flow")).flows)
    return svc


def _logged_run(svc: Services, repo: str, flow_id: str, log: str, *, commit: str,
                actor: str, inputs: dict[str, object]) -> tuple[str, Path]:
    """A new run of ``flow_id`` and its task's log file holding ``log``."""
    registered = svc.registry.get(repo, flow_id)
    assert registered is not None
    run = svc.store.create_run(registered.flow, repo=repo, commit=commit,
                               trigger=Trigger(TriggerType.MANUAL, actor), inputs=inputs)
    path = log_path(svc.settings.data_dir, run.id, "build", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(log)
    return run.id, path


def running_run(svc: Services, repo: str = MINE, flow_id: str = "nightly",
                log: str = "compiling\n", *, commit: str = "a" * 40, actor: str = USER,
                inputs: dict[str, object] | None = None) -> str:
    """A run of ``flow_id`` whose task ``build`` is running, its log written so far."""
    run_id, path = _logged_run(svc, repo, flow_id, log, commit=commit, actor=actor,
                               inputs=inputs or {})
    svc.store.set_run_status(run_id, Status.RUNNING, expect=[Status.QUEUED])
    svc.store.start_attempt(run_id, "build", 1, str(path))
    return run_id


def add_run(svc: Services, status: Status, repo: str = MINE, flow_id: str = "nightly",
            log: str = "compiling\ndone\n") -> str:
    """A finished run of ``flow_id`` with a log for its task."""
    run_id, path = _logged_run(svc, repo, flow_id, log, commit="a" * 40, actor=USER,
                               inputs={"day": "mon"})
    svc.store.start_attempt(run_id, "build", 1, str(path))
    svc.store.finish_attempt(run_id, "build", 1, status, exit_code=0 if
                             status is Status.SUCCESS else 1)
    runs = svc.runs
    assert isinstance(runs, FakeRuns)
    runs.finish(run_id, status, failed_task=None if status is Status.SUCCESS else "build")
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    clock.advance(60)  # the next run is newer: the order of runs is their creation order
    return run_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(app: FastAPI, port: int) -> Iterator[str]:
    """``app`` on ``http://127.0.0.1:<port>`` in a thread, for as long as the block."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "the app to listen", interval=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ui_app(svc: Services) -> FastAPI:
    return create_app(svc.settings, svc)
