"""The service with the Docker engine unreachable at start: it starts, validates
pull requests, queues a ``/run`` saying it waits for the engine, and runs it when
the engine answers. The engine is taken away through a socket proxy (never by
stopping the dockerd every test shares)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bot.engine_gate import WAITING
from bot.github.client import HttpPolicy, PyGithubClients
from bot.intake.app import create_app
from bot.runtime import build_runtime
from bot.settings import Settings
from bot.web.api import ENGINE_AWAY
from runner.backends.base import LABEL_OWNER
from runner.backends.docker_backend import DockerBackend
from runner.running.service import installation_for
from runner.state.records import Status
from tests.bot.e2e_support import HELLO, SECRET, Bot, Origin
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient, pull_request_event, push_event
from tests.runner.backends.engine_proxy import EngineProxy

# The docker SDK does not close the socket of a failed unix connect (each ping while
# the engine is away): CPython frees it at once, with a ResourceWarning.
pytestmark = [pytest.mark.docker,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture
def bot_without_engine(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str,
                       docker_client: docker.DockerClient) -> Iterator[tuple[Bot, EngineProxy]]:
    proxy = EngineProxy()  # not started: the engine's socket does not answer
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, webhook_secret=SECRET, github_api_url=fake_github.url,
                        github_token=FAKE_TOKEN, public_url="http://flowbot.test", workers=2)
    backend = DockerBackend(client=proxy.client(), owner=installation_for(settings.db_url))
    github = PyGithubClients(fake_github.url, token=FAKE_TOKEN, policy=HttpPolicy.fast())
    runtime = build_runtime(settings, github=github, backend=backend)
    runtime.engine_poll = 0.2
    fake_github.add_collaborator(FAKE_REPO, "writer", "write")
    bot = Bot(runtime, TestClient(create_app(settings, runtime.services)), fake_github,
              Origin(tmp_path / "origin"))
    runtime.start()  # used to raise: reconciling needs the engine
    try:
        yield bot, proxy
    finally:
        runtime.stop()
        proxy.close()
        gc.collect()  # sockets the SDK leaked while the engine was away, under this module's filter
        by_owner = {"label": f"{LABEL_OWNER}={installation_for(settings.db_url)}"}
        for container in docker_client.containers.list(all=True, filters=by_owner):
            container.remove(force=True)


def test_serve_starts_validates_and_queues_runs_until_the_engine_answers(
    bot_without_engine: tuple[Bot, EngineProxy],
) -> None:
    bot, proxy = bot_without_engine
    clone = str(bot.origin.path)
    base = bot.origin.commit({"flows/hello.yml": HELLO}, "hello flow")
    bot.deliver("push", push_event(base, repo=FAKE_REPO, clone_url=clone))
    bot.settle()
    # a pull request is validated although no container can run
    head = bot.origin.commit({"flows/hello.yml": HELLO.replace("hello'", "hi'")}, "hi",
                             branch="feature")
    number = bot.fake.add_pull(FAKE_REPO, head_sha=head)
    bot.deliver("pull_request", pull_request_event("opened", number, head, repo=FAKE_REPO,
                                                   clone_url=clone))
    bot.settle()
    states = [s["state"] for s in bot.fake.statuses(FAKE_REPO, head)
              if s["context"] == "flowbot/validate"]
    assert states[0] == "success"  # newest first, after "pending"

    # a /run is accepted and waits, saying why
    issue = bot.fake.add_issue(FAKE_REPO, "Run it")
    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "writer"))
    bot.settle()
    [run] = bot.runtime.services.store.list_runs(repo=FAKE_REPO)
    note = WAITING.format(run_id=run.id)
    assert (run.status, run.error) == (Status.QUEUED, note)
    reply = bot.fake.comments(FAKE_REPO, issue)[-1]
    assert f"> {note}" in reply and "queued" in reply
    health = bot.client.get("/healthz")
    assert (health.status_code, health.json()["engine"]) == (200, ENGINE_AWAY)
    time.sleep(1)  # several polls of the absent engine: nothing starts
    assert bot.runtime.services.store.get_run(run.id).status is Status.QUEUED  # type: ignore[union-attr]

    proxy.start()  # the engine is back: the queue moves, the note goes
    final = bot.wait_run(run.id)
    assert (final.status, final.error) == (Status.SUCCESS, "")
    reply = bot.fake.comments(FAKE_REPO, issue)[-1]
    assert "success" in reply and "Waiting for the Docker engine" not in reply
    health = bot.client.get("/healthz").json()
    assert health == {"ok": True, "replica": health["replica"], "replicas": 1}
