"""End to end across a crash: ``flowbot serve`` is killed (SIGKILL) while a run's
container is running, started again on the same data directory, and the run
ends in a truthful state that is reported to the same status and comment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bot.app import sign
from runner.clock import SystemClock
from runner.db import connect
from runner.records import Status
from runner.store import RunStore
from tests.bot.e2e_support import SECRET, Origin
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import issue_comment_event, push_event

pytestmark = pytest.mark.docker

SLOW = """id: slow
tasks:
  - id: nap
    image: busybox:latest
    network: none
    commands: ['echo start', 'sleep 6', 'echo woke']
"""
SERVE = "import sys; from bot.cli import main; sys.exit(main(['serve']))"
T = TypeVar("T")


def _until(what: str, probe: Callable[[], T | None], seconds: float = 90) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, data_dir: Path, fake: FakeGitHub) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FLOWBOT_DATA_DIR": str(data_dir), "FLOWBOT_WEBHOOK_SECRET": SECRET,
               "FLOWBOT_GITHUB_API_URL": fake.url, "FLOWBOT_GITHUB_TOKEN": FAKE_TOKEN,
               "FLOWBOT_PUBLIC_URL": "http://flowbot.test", "FLOWBOT_HOST": "127.0.0.1",
               "FLOWBOT_PORT": str(self.port)}
        env.pop("FLOWBOT_DATABASE_URL", None)
        self.log = (data_dir / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        _until("the service to answer", self._healthy, 60)

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, "flowbot serve exited"
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def deliver(self, event: str, payload: dict[str, Any]) -> int:
        body = json.dumps(payload).encode()
        return httpx.post(self.url + "/webhook", content=body, timeout=5, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
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
def served(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for one in started:
        one.stop()


def _statuses(fake: FakeGitHub, sha: str, context: str) -> list[str]:
    return [s["state"] for s in reversed(fake.statuses(FAKE_REPO, sha)) if s["context"] == context]


def test_killed_mid_run_then_restarted_reports_the_truthful_end(
    tmp_path: Path, fake_github: FakeGitHub, served: list[Served]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    origin = Origin(tmp_path / "origin")
    sha = origin.commit({"flows/slow.yml": SLOW}, "slow flow")
    fake_github.add_collaborator(FAKE_REPO, "writer", "write")
    first = Served(data_dir, fake_github)
    served.append(first)
    assert first.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(origin.path))) \
        == 202
    _until("the sync status", lambda: "success" in _statuses(fake_github, sha, "flowbot/sync"))

    issue = fake_github.add_issue(FAKE_REPO, "Run it")
    repo = fake_github.state.repo(*FAKE_REPO.split("/"))
    assert repo is not None
    comment = fake_github.state.add_comment(repo, issue, "/run slow", "writer")
    first.deliver("issue_comment", issue_comment_event(
        "/run slow", login="writer", number=issue, repo=FAKE_REPO, comment_id=comment.id,
        clone_url=str(origin.path)))
    store = RunStore(connect(f"sqlite:///{data_dir / 'flowbot.db'}"), SystemClock())
    run_id = _until("the run to start its container", lambda: next(
        (r.id for r in store.list_runs() if any(a.handle for a in store.attempts(r.id))), None))
    # the run no longer waits for GitHub before starting: pending follows soon after
    _until("the pending status",
           lambda: _statuses(fake_github, sha, "flowbot/run/slow") == ["pending"])

    first.kill()  # no chance to clean up or report
    assert store.get_run(run_id).status is Status.RUNNING  # type: ignore[union-attr]

    second = Served(data_dir, fake_github)
    served.append(second)
    final = _until("the run to end", lambda: (
        run if (run := store.get_run(run_id)) is not None and run.status.terminal else None))
    assert final.status is Status.SUCCESS
    _until("the final status", lambda: _statuses(fake_github, sha, "flowbot/run/slow")[-1:]
           == ["success"])
    replies = [c for c in fake_github.comments(FAKE_REPO, issue) if f"Run [{run_id}]" in c]
    assert len(replies) == 1 and ": success" in replies[0]
    log = httpx.get(f"{second.url}/runs/{run_id}/logs/nap", timeout=5).text
    assert "start" in log and "woke" in log
