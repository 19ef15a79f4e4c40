"""Every problem of a flow file in one answer: a pull request's sticky comment,
read back from the fake GitHub over HTTP, lists the schema's problem and the
ones a schema can't express, each at its own position."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.e2e_support import Bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import pull_request_event

BROKEN = """id: hourly
triggers:
  - type: schedule
    cron: "61 * * * *"
tasks:
  - id: greet
    commands: [echo hi]
"""
YAML_LEVEL = """id: nightly
triggers:
  - type: schedule
    cron: "0 2 * * *"
    enabled: yes
tasks:
  - id: load
    image: busybox:latest
    needs: [extract]
    commands: [echo load]
"""


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github) as made:
        yield made


def _comments_over_http(fake: FakeGitHub, number: int) -> list[str]:
    """The pull request's comments as a GitHub client reads them."""
    request = urllib.request.Request(
        f"{fake.url}/repos/{FAKE_REPO}/issues/{number}/comments",
        headers={"Authorization": f"token {FAKE_TOKEN}", "Accept": "application/vnd.github+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return [c["body"] for c in json.load(answer)]


def test_the_sticky_comment_lists_every_problem_of_a_file_at_its_position(bot: Bot) -> None:
    bot.origin.commit({"README.md": "flows\n"}, "base")
    head = bot.origin.commit({"flows/hourly.yml": BROKEN, "flows/nightly.yml": YAML_LEVEL},
                             "two broken flows", branch="feature")
    number = bot.fake.add_pull(FAKE_REPO, head_sha=head)
    bot.deliver("pull_request", pull_request_event("opened", number, head, repo=FAKE_REPO,
                                                   clone_url=str(bot.origin.path)))
    bot.settle()

    [comment] = _comments_over_http(bot.fake, number)
    # the schema's problem and the cron's, in one comment, each where it is
    assert re.search(r"`flows/hourly\.yml:6:5` error: tasks\[0\]: missing required key "
                     r'"image"', comment)
    assert re.search(r"`flows/hourly\.yml:4:11` error: triggers\[0\]\.cron: invalid cron "
                     r'expression: field 1 \(minute\) "61"', comment)
    # a YAML-level problem hides nothing: the unknown need is there too, with the tasks
    assert re.search(r"`flows/nightly\.yml:5:14` error: unquoted `yes` is read as a boolean",
                     comment)
    assert re.search(r"`flows/nightly\.yml:9:13` error: tasks\[0\]\.needs\[0\]: needs "
                     r'"extract", but there is no such task; the flow has no other tasks',
                     comment)
    assert "expected true or false" not in comment  # the `yes` is explained once
