"""``flowbot serve`` as a child process on a data directory, to be killed
(SIGKILL) and started again, and the scene the crash tests share: a repository
with a slow flow, synced, and a ``/run slow`` comment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.intake.app import sign
from runner.state.records import RunRecord, Status
from runner.state.store import RunStore
from tests.bot.e2e_support import SECRET, Origin, run_end
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import issue_comment_event, push_event
from tests.polling import wait_until

SLOW = """id: slow
tasks:
  - id: nap
    image: busybox:latest
    network: none
    commands: ['echo start', 'sleep 6', 'echo woke']
"""
SERVE = "import sys; from bot.cli import main; sys.exit(main(['serve']))"
WAIT_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """One ``flowbot serve`` process; ``extra`` adds to (or replaces) its settings,
    e.g. ``FLOWBOT_DATABASE_URL``; ``wait=False`` returns before it answers
    (call :meth:`wait_healthy`)."""

    def __init__(self, data_dir: Path, fake: FakeGitHub, extra: Mapping[str, str] | None = None,
                 *, wait: bool = True) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FLOWBOT_DATA_DIR": str(data_dir), "FLOWBOT_WEBHOOK_SECRET": SECRET,
               "FLOWBOT_GITHUB_API_URL": fake.url, "FLOWBOT_GITHUB_TOKEN": FAKE_TOKEN,
               "FLOWBOT_PUBLIC_URL": "http://flowbot.test", "FLOWBOT_HOST": "127.0.0.1",
               "FLOWBOT_PORT": str(self.port)}
        env.pop("FLOWBOT_DATABASE_URL", None)
        env.update(extra or {})
        self.log = (data_dir / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()

    def wait_healthy(self) -> None:
        wait_until(self._healthy, 60, "the service to answer", interval=0.1)

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, "flowbot serve exited"
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def deliver(self, event: str, payload: dict[str, Any], delivery: str | None = None) -> int:
        body = json.dumps(payload).encode()
        return httpx.post(self.url + "/webhook", content=body, timeout=5, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET, body)}).status_code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def served(fake_github: FakeGitHub, busybox_image: str) -> Iterator[list[Served]]:
    """The ``flowbot serve`` processes a test starts, stopped after it."""
    started: list[Served] = []
    yield started
    for one in started:
        one.stop()


def statuses(fake: FakeGitHub, sha: str, context: str) -> list[str]:
    return [s["state"] for s in reversed(fake.statuses(FAKE_REPO, sha)) if s["context"] == context]


@dataclass
class Scene:
    data_dir: Path
    origin: Origin
    sha: str  # the commit that holds the slow flow
    first: Served  # the process that will crash


def serving_the_slow_flow(tmp_path: Path, fake: FakeGitHub, served: list[Served]) -> Scene:
    """A repository with the slow flow, pushed to a first ``flowbot serve`` and synced."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    origin = Origin(tmp_path / "origin")
    sha = origin.commit({"flows/slow.yml": SLOW}, "slow flow")
    fake.add_collaborator(FAKE_REPO, "writer", "write")
    first = Served(data_dir, fake)
    served.append(first)
    assert first.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(origin.path))) \
        == 202
    wait_until(lambda: "success" in statuses(fake, sha, "flowbot/sync"), WAIT_SECONDS,
               "the sync status", interval=0.1)
    return Scene(data_dir, origin, sha, first)


def ask_to_run_slow(scene: Scene, fake: FakeGitHub) -> int:
    """A writer comments ``/run slow`` on a new issue; returns the issue number."""
    issue = fake.add_issue(FAKE_REPO, "Run it")
    repo = fake.state.repo(*FAKE_REPO.split("/"))
    assert repo is not None
    comment = fake.state.add_comment(repo, issue, "/run slow", "writer")
    scene.first.deliver("issue_comment", issue_comment_event(
        "/run slow", login="writer", number=issue, repo=FAKE_REPO, comment_id=comment.id,
        clone_url=str(scene.origin.path)))
    return issue


def succeeded(scene: Scene, fake: FakeGitHub, store: RunStore, run_id: str) -> RunRecord:
    """Wait for the run to end in success and for its status to say so."""
    final = wait_until(lambda: run_end(store, run_id), WAIT_SECONDS, "the run to end",
                       interval=0.1)
    assert final.status is Status.SUCCESS
    wait_until(lambda: statuses(fake, scene.sha, "flowbot/run/slow")[-1:] == ["success"],
               WAIT_SECONDS, "the final status", interval=0.1)
    return final
