"""`/run` of a repository too large for a run's copy, end to end through the
fake GitHub over HTTP and the real Docker engine: the reply names the bound, the
setting and what to do; no task runs and no copy stays on the data disk. Once
the large file is gone the same command runs as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.e2e_support import Bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import push_event

pytestmark = pytest.mark.docker

BOUND = 64 * 1024  # bytes a run's copy of the repository may hold in these tests
HELLO = """id: hello
tasks:
  - {id: greet, image: busybox:latest, network: none, commands: ['echo hello from the copy']}
"""


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github, writers=["writer"], workspace_max_bytes=BOUND) as made:
        yield made


def _pushed(bot: Bot, files: dict[str, str | bytes | None]) -> str:
    sha = bot.origin.commit(files, "change")
    bot.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    bot.settle()
    return sha


def _run_hello(bot: Bot) -> str:
    """Comment ``/run hello`` on a new issue; flowbot's one reply (as it ends up)."""
    issue = bot.fake.add_issue(FAKE_REPO, "go")
    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "writer"))
    bot.settle()
    for run in bot.runtime.services.store.list_runs(repo=FAKE_REPO):
        bot.wait_run(run.id)
    [reply] = bot.fake.comments(FAKE_REPO, issue)[1:]
    return reply


def test_a_repository_over_the_bound_gets_the_reason_and_runs_nothing(bot: Bot) -> None:
    sha = _pushed(bot, {"flows/hello.yml": HELLO, "data/big.bin": b"\0" * (1 << 20)})
    reply = _run_hello(bot)
    assert (f"the repository at {sha} is larger than FLOWBOT_WORKSPACE_MAX_BYTES (64 KiB), "
            "the most a run's copy of it may hold: keep large data out of the repository (a "
            "task can fetch it) or have the operator raise FLOWBOT_WORKSPACE_MAX_BYTES") in reply
    store = bot.runtime.services.store
    [run] = store.list_runs(repo=FAKE_REPO)
    assert run.status.value == "failed" and run.error is not None and sha in run.error
    assert store.attempts(run.id) == []
    work = bot.runtime.services.settings.data_dir / "work"
    assert not work.exists() or list(work.iterdir()) == []

    _pushed(bot, {"data/big.bin": None})
    reply = _run_hello(bot)
    latest = store.list_runs(repo=FAKE_REPO)[0]
    assert latest.id != run.id and latest.status.value == "success", reply
    assert "hello from the copy" in bot.client.get(f"/runs/{latest.id}/logs/greet").text
