"""`/run` of a flow whose secret flowbot lacks, end to end through the fake
GitHub over HTTP: one reply naming the secret and what to do, and no run (no
run id used up, no run page, no status)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.e2e_support import Bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import push_event

pytestmark = pytest.mark.docker

ALERT = """id: alert
secrets: [WEBHOOK_URL]
tasks:
  - id: post
    image: busybox:latest
    network: none
    commands: ['echo "{{ secrets.WEBHOOK_URL }}" > /dev/null']
"""
HELLO = """id: hello
tasks:
  - {id: greet, image: busybox:latest, network: none, commands: ['echo hi']}
"""


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github, writers=["writer"]) as made:
        yield made


def test_run_missing_a_secret_is_answered_without_a_run(bot: Bot) -> None:
    sha = bot.origin.commit({"flows/alert.yml": ALERT, "flows/hello.yml": HELLO}, "flows")
    bot.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    bot.settle()
    issue = bot.fake.add_issue(FAKE_REPO, "alerts")

    bot.deliver("issue_comment", bot.comment(issue, "/run alert", "writer"))
    bot.settle()

    posted = bot.fake.requests_to("POST", rf"/repos/{FAKE_REPO}/issues/{issue}/comments")
    [reply] = [r.body["body"] for r in posted]
    assert "/runs/" not in reply  # no run page to link to
    assert reply.split("\n\n")[:1] == [
        "@writer cannot run `alert`: it needs secret(s) `WEBHOOK_URL`, and this flowbot has no "
        "value for them, so no run was started. Whoever runs flowbot sets "
        "`FLOWBOT_SECRET_WEBHOOK_URL` (or adds `NAME=value` lines to the file "
        "`FLOWBOT_SECRETS_FILE` names) and restarts it; then comment `/run alert` again."]
    assert bot.runtime.services.store.list_runs() == []
    assert bot.fake.requests_to("POST", r"/statuses/") == []

    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "writer"))
    bot.settle()
    [run] = bot.runtime.services.store.list_runs()
    assert bot.wait_run(run.id).status.value == "success"  # the refusal took no run id
