"""Comment commands end to end: signed webhooks into the real app and workers,
the fake GitHub server over HTTP, real git repositories and the real Docker
engine. ``/run`` on a pull request never runs the pull request's code, and a
flood of commands gets one reply per comment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.github.client import HttpPolicy, PyGithubClients
from bot.intake.app import create_app
from bot.runtime import build_runtime
from bot.settings import Settings
from tests.bot.e2e_support import SECRET, Bot, Origin
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient, issue_comment_event, push_event

pytestmark = pytest.mark.docker

PASSWORD = "hunter2-db"
HELLO = """id: hello
tasks:
  - id: greet
    image: busybox:latest
    network: none
    commands: ['echo "hello from main"']
"""
HELLO_FROM_PR = """id: hello
secrets: [DBPASS]
tasks:
  - id: greet
    image: busybox:latest
    network: none
    commands: ['echo "{{ secrets.DBPASS }}" | rev', 'echo PR-SCRIPT-RAN']
"""
PR_ONLY = """id: pronly
tasks:
  - id: t
    image: busybox:latest
    network: none
    commands: ['echo PR-ONLY-RAN']
"""


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[Bot]:
    """The e2e bot, with secret DBPASS configured as an operator would."""
    origin = Origin(tmp_path / "origin")
    for login, role in (("writer", "write"), ("reader", "read")):
        fake_github.add_collaborator(FAKE_REPO, login, role)
    settings = Settings(
        data_dir=tmp_path / "data", webhook_secret=SECRET, github_api_url=fake_github.url,
        github_token=FAKE_TOKEN, public_url="http://flowbot.test", max_parallel_tasks=2,
        workers=2, environ={"FLOWBOT_SECRET_DBPASS": PASSWORD})
    runtime = build_runtime(settings, github=PyGithubClients(
        fake_github.url, token=FAKE_TOKEN, policy=HttpPolicy.fast()))
    made = Bot(runtime, TestClient(create_app(settings, runtime.services)), fake_github, origin)
    runtime.start()
    try:
        yield made
    finally:
        runtime.stop()


def _pr_comment(bot: Bot, number: int, body: str, login: str) -> dict[str, Any]:
    repo = bot.fake.state.repo(*FAKE_REPO.split("/"))
    assert repo is not None
    made = bot.fake.state.add_comment(repo, number, body, login)
    return issue_comment_event(body, login=login, number=number, repo=FAKE_REPO, pull=True,
                               comment_id=made.id, clone_url=str(bot.origin.path))


def _bot_comments(bot: Bot, number: int) -> list[str]:
    """The bodies flowbot posted on issue ``number`` (over the API, not the test's own)."""
    path = rf"/repos/octo/flows/issues/{number}/comments"
    return [r.body["body"] for r in bot.fake.requests_to("POST", path)]


def test_run_on_a_same_repo_pr_runs_the_registered_flow_not_the_prs(bot: Bot) -> None:
    base = bot.origin.commit({"flows/hello.yml": HELLO}, "hello flow")
    bot.deliver("push", push_event(base, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    bot.settle()
    head = bot.origin.commit({"flows/hello.yml": HELLO_FROM_PR, "flows/pronly.yml": PR_ONLY},
                             "use the database", branch="feature")
    number = bot.fake.add_pull(FAKE_REPO, head_sha=head)  # same repository, not a fork

    bot.deliver("issue_comment", _pr_comment(bot, number, "/run hello\n/run pronly", "writer"))
    bot.settle()
    [run] = bot.runtime.services.store.list_runs(repo=FAKE_REPO)
    final = bot.wait_run(run.id)
    assert (final.flow_id, final.commit, final.status.value) == ("hello", base, "success")
    log = bot.client.get(f"/runs/{run.id}/logs/greet").text
    assert log.splitlines() == ["hello from main"]
    assert "PR-SCRIPT-RAN" not in log and PASSWORD[::-1] not in log
    [reply] = _bot_comments(bot, number)
    assert "never this pull request's version" in reply and f"Run [{run.id}]" in reply
    assert "no flow `pronly` registered from the default branch" in reply
    assert "runs only once it is merged" in reply and PASSWORD not in reply


def test_floods_get_one_reply_per_comment_and_repeated_refusals_none(bot: Bot) -> None:
    base = bot.origin.commit({"flows/hello.yml": HELLO}, "hello flow")
    bot.deliver("push", push_event(base, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    bot.settle()
    floods = [("reader", "/help\n" * 300), ("reader", "/run hello\n" * 300),
              ("stranger", "/run\n" * 300)]
    issues = []
    for login, body in floods:
        issue = bot.fake.add_issue(FAKE_REPO, f"flood by {login}")
        bot.deliver("issue_comment", bot.comment(issue, body, login))
        issues.append(issue)
    bot.settle()
    assert [len(_bot_comments(bot, issue)) for issue in issues] == [1, 1, 1]
    help_reply, run_refusal, bare_refusal = (_bot_comments(bot, i)[0] for i in issues)
    assert help_reply.count("**flowbot commands**") == 1
    assert run_refusal.startswith("Sorry @reader, `/run` needs write access")
    assert bare_refusal.startswith("Sorry @stranger, `/run` needs write access")
    assert bot.runtime.services.store.list_runs() == []

    # the same refusal again within the window: nothing new on GitHub
    bot.deliver("issue_comment", bot.comment(issues[2], "/run\n" * 300, "stranger"))
    bot.deliver("issue_comment", bot.comment(issues[1], "/run hello", "reader"))
    bot.settle()
    assert [len(_bot_comments(bot, issue)) for issue in issues] == [1, 1, 1]
