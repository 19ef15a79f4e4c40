"""The whole service against a real git repository, the fake GitHub server and
the real Docker engine: build it, send it signed webhooks, wait for it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from bot.github.client import HttpPolicy, PyGithubClients
from bot.intake.app import create_app, sign
from bot.intake.deliveries import DeliveryStatus
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from runner.clock import Clock
from runner.state.records import RunRecord
from runner.state.store import RunStore
from tests.bot.delivery_rows import all_deliveries, delivery_count
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient, issue_comment_event, repository
from tests.polling import wait_until

SECRET = "e2e-webhook-secret"
WAIT_SECONDS = 120
# the smallest flow a /run can start: one task, greet, printing "hello"
HELLO = """id: hello
tasks:
  - id: greet
    image: busybox:latest
    network: none
    commands: ['echo hello']
"""


def run_end(store: RunStore, run_id: str) -> RunRecord | None:
    """The run's record once it has ended, else None (a predicate to wait on)."""
    run = store.get_run(run_id)
    return run if run is not None and run.status.terminal else None


class Origin:
    """A real git repository standing in for the GitHub repository's content."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "Dev")
            config.set_value("user", "email", "dev@example.com")

    def commit(self, files: dict[str, str | bytes | None], message: str = "change",
               branch: str = "main") -> str:
        if self.repo.head.is_valid() and self.repo.active_branch.name != branch:
            names = [h.name for h in self.repo.heads]
            self.repo.git.checkout(branch if branch in names else ["-b", branch])
        for name, text in files.items():
            target = self.path / name
            if text is None:
                self.repo.index.remove([name], working_tree=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text if isinstance(text, bytes) else text.encode())
            self.repo.index.add([name])
        return str(self.repo.index.commit(message).hexsha)

    def checkout(self, branch: str) -> None:
        self.repo.git.checkout(branch)

    def merge(self, branch: str) -> str:
        self.repo.git.checkout("main")
        self.repo.git.merge(branch, "--no-ff", "-m", f"Merge {branch}")
        return str(self.repo.head.commit.hexsha)


@dataclass
class Bot:
    runtime: Runtime
    client: TestClient
    fake: FakeGitHub
    origin: Origin

    def deliver(self, event: str, payload: dict[str, Any], delivery: str | None = None,
                secret: str = SECRET) -> int:
        body = json.dumps(payload).encode()
        response = self.client.post("/webhook", content=body, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"})
        return response.status_code

    def settle(self) -> None:
        """Wait until every recorded delivery is processed."""
        store = self.runtime.services.deliveries
        wait_until(lambda: delivery_count(store, DeliveryStatus.PENDING)
                   + delivery_count(store, DeliveryStatus.PROCESSING) == 0,
                   WAIT_SECONDS, "the deliveries to be processed")
        failed = [d for d in all_deliveries(store) if d.status is DeliveryStatus.FAILED]
        assert not failed, [d.error for d in failed]

    def wait_run(self, run_id: str) -> RunRecord:
        run = wait_until(lambda: run_end(self.runtime.services.store, run_id), WAIT_SECONDS,
                         f"run {run_id} to end")
        time.sleep(0.3)  # let the final report go out
        return run

    def comment(self, issue: int, body: str, login: str) -> dict[str, Any]:
        """An issue_comment webhook for a comment that exists on the fake GitHub."""
        owner, name = FAKE_REPO.split("/")
        repo = self.fake.state.repo(owner, name)
        assert repo is not None
        made = self.fake.state.add_comment(repo, issue, body, login)
        return issue_comment_event(body, login=login, number=issue, repo=FAKE_REPO,
                                   comment_id=made.id, clone_url=str(self.origin.path))

    def repository(self) -> dict[str, Any]:
        return repository(FAKE_REPO, str(self.origin.path))


def make_bot(tmp_path: Path, fake: FakeGitHub, origin: Origin, data_dir: Path | None = None,
             github: PyGithubClients | None = None, clock: Clock | None = None,
             **settings_given: Any) -> Bot:
    """The e2e bot; ``settings_given`` replace the e2e defaults of :class:`Settings`."""
    defaults: dict[str, Any] = {"max_parallel_tasks": 2, "workers": 2}
    settings = Settings(
        data_dir=data_dir or tmp_path / "data", webhook_secret=SECRET,
        github_api_url=fake.url, github_token=FAKE_TOKEN, public_url="http://flowbot.test",
        **(defaults | settings_given),
    )
    github = github or PyGithubClients(fake.url, token=FAKE_TOKEN, policy=HttpPolicy.fast())
    runtime = build_runtime(settings, github=github, clock=clock)
    return Bot(runtime, TestClient(create_app(settings, runtime.services)), fake, origin)


@contextmanager
def started_bot(tmp_path: Path, fake: FakeGitHub, *, writers: Iterable[str] = (),
                **settings_given: Any) -> Iterator[Bot]:
    """:func:`make_bot` on a new origin, ``writers`` given write access to the fake
    repository, its runtime (workers, scheduler, runs) started for the block."""
    for login in writers:
        fake.add_collaborator(FAKE_REPO, login, "write")
    made = make_bot(tmp_path, fake, Origin(tmp_path / "origin"), **settings_given)
    made.runtime.start()
    try:
        yield made
    finally:
        made.runtime.stop()
