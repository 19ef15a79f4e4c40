"""A pull request's flow that the configured backend cannot honour, or that asks for more
than the operator's bounds (docker), fails validation:
the sticky comment, read back from the fake GitHub over HTTP, names each field at its
position and why, and the commit status fails. The check needs no engine."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.e2e_support import Bot, Origin, make_bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import pull_request_event

ISOLATED = """id: train
pool: gpu
tasks:
  - id: fetch
    image: busybox:latest
    network: none
    commands: [echo fetched]
"""


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github, backend="process") as made:
        yield made


def _over_http(fake: FakeGitHub, path: str) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"{fake.url}/repos/{FAKE_REPO}/{path}",
        headers={"Authorization": f"token {FAKE_TOKEN}", "Accept": "application/vnd.github+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return list(json.load(answer))


def _pr_comment(bot: Bot, files: dict[str, str | bytes | None]) -> tuple[str, str]:
    """The sticky comment and the newest flowbot/validate state of a PR adding ``files``."""
    bot.origin.commit({"README.md": "flows\n"}, "base")
    head = bot.origin.commit(files, "a flow", branch="feature")
    number = bot.fake.add_pull(FAKE_REPO, head_sha=head)
    bot.deliver("pull_request", pull_request_event("opened", number, head, repo=FAKE_REPO,
                                                   clone_url=str(bot.origin.path)))
    bot.settle()
    [comment] = [c["body"] for c in _over_http(bot.fake, f"issues/{number}/comments")]
    states = [s["state"] for s in _over_http(bot.fake, f"commits/{head}/statuses")
              if s["context"] == "flowbot/validate"]
    return str(comment), str(states[0])  # newest first


def test_the_sticky_comment_names_what_the_process_backend_cannot_honour(bot: Bot) -> None:
    comment, state = _pr_comment(bot, {"flows/train.yml": ISOLATED})
    assert ('`flows/train.yml:2:7` error: pool: "gpu" cannot be placed by the process '
            'backend, which runs only the "default" pool; remove pool: (or set it to '
            "default), or run flowbot with FLOWBOT_BACKEND=swarm on nodes labelled "
            "flowbot.pool=gpu") in comment
    assert ('`flows/train.yml:6:14` error: tasks[0].network: "none" cannot be honoured by '
            "the process backend: tasks run as host processes, on flowbot's own network; "
            "remove it, or run flowbot with FLOWBOT_BACKEND=docker") in comment
    assert state == "failure"


HUNGRY = """id: crunch
tasks:
  - id: fit
    image: busybox:latest
    resources:
      cpus: 8
      memory: 2g
    commands: [echo fitted]
"""


@pytest.mark.docker
def test_the_sticky_comment_names_resources_over_the_operators_bounds(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    bounded = make_bot(tmp_path, fake_github, Origin(tmp_path / "origin"), backend="docker",
                       task_max_cpus=2.0, task_max_memory="1g", task_memory="512m")
    bounded.runtime.start()
    try:
        comment, state = _pr_comment(bounded, {"flows/crunch.yml": HUNGRY})
    finally:
        bounded.runtime.stop()
    assert ("`flows/crunch.yml:6:13` error: tasks[0].resources.cpus: asks for 8, above this "
            "flowbot's limit of 2 (FLOWBOT_TASK_MAX_CPUS); ask for at most 2, or have the "
            "operator raise FLOWBOT_TASK_MAX_CPUS") in comment
    assert ("`flows/crunch.yml:7:15` error: tasks[0].resources.memory: asks for 2g, above this "
            "flowbot's limit of 1g (FLOWBOT_TASK_MAX_MEMORY); ask for at most 1g, or have the "
            "operator raise FLOWBOT_TASK_MAX_MEMORY") in comment
    assert state == "failure"


def test_the_process_backend_reports_no_bounds_in_the_sticky_comment(bot: Bot) -> None:
    """The fixture's bot runs tasks as processes: unbounded, so only a warning."""
    comment, state = _pr_comment(bot, {"flows/crunch.yml": HUNGRY})
    assert "FLOWBOT_TASK_MAX" not in comment
    assert ("`flows/crunch.yml:6:7` warning: tasks[0].resources: not enforced by the process "
            "backend") in comment
    assert state == "success"
