"""What a run printed, where it was asked for: the `/run` reply and the scheduled
failure issue show outputs and log tails, safely fenced; the reply's edits are
paced and never repeat. Real Docker, real git, the fake GitHub over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.handlers.log_excerpts import JOINER
from runner.state.records import Trigger, TriggerType
from runner.validation.validate import validate_files
from tests.bot.e2e_support import Bot, Origin, make_bot, run_end
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import push_event
from tests.polling import wait_until

pytestmark = pytest.mark.docker

REPORT = """id: report
inputs:
  name: {type: string, default: world}
tasks:
  - id: compute
    image: busybox:latest
    network: none
    commands: ['echo "computing for {{ inputs.name }}"', 'echo "total=42" >> "$FLOWBOT_OUTPUT"']
  - id: publish
    image: busybox:latest
    needs: [compute]
    network: none
    commands:
      - 'echo "hello {{ inputs.name }}"'
      - 'echo "greeting=hello {{ inputs.name }}" >> "$FLOWBOT_OUTPUT"'
"""
BROKEN = """id: broken
triggers:
  - {id: night, type: schedule, cron: "0 3 * * *"}
tasks:
  - id: boom
    image: busybox:latest
    network: none
    commands:
      - |
        seq 1 40 | sed 's/^/noise /'
        echo 'x ``` y'
        echo '```'
        echo '@octocat look at this'
        echo 'fixes #1'
        echo '</details>'
        exit 3
"""
STEPS = """id: steps
tasks:
""" + "".join(f"""  - id: s{n}
    image: busybox:latest
    network: none
    {'needs: [s' + str(n - 1) + ']' if n else ''}
    commands: ['echo step {n}']
""" for n in range(6))


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin(tmp_path / "origin")


@contextmanager
def _started(tmp_path: Path, fake: FakeGitHub, origin: Origin,
             **settings: object) -> Iterator[Bot]:
    fake.add_collaborator(FAKE_REPO, "writer", "write")
    bot = make_bot(tmp_path, fake, origin, **settings)
    bot.runtime.start()
    try:
        sha = origin.commit({"flows/report.yml": REPORT, "flows/broken.yml": BROKEN,
                             "flows/steps.yml": STEPS}, "flows")
        bot.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(origin.path)))
        bot.settle()
        yield bot
    finally:
        bot.runtime.stop()


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, origin: Origin,
        busybox_image: str) -> Iterator[Bot]:
    with _started(tmp_path, fake_github, origin) as started:
        yield started


def _run_reply(bot: Bot, line: str, until: str) -> str:
    """The reply to a `/run` comment once it shows ``until``."""
    issue = bot.fake.add_issue(FAKE_REPO, "Run it")
    bot.deliver("issue_comment", bot.comment(issue, line, "writer"))
    bot.settle()

    def reply() -> str | None:
        comments = bot.fake.comments(FAKE_REPO, issue)
        return comments[1] if len(comments) > 1 and until in comments[1] else None
    return wait_until(reply, 120, f"the reply to {line!r} to show {until!r}")


def test_a_run_reply_shows_the_final_outputs_and_log(bot: Bot) -> None:
    reply = _run_reply(bot, "/run report name=eval", ": success\n")
    assert "<summary>Outputs of <code>publish</code></summary>" in reply
    assert "greeting=hello eval" in reply
    assert "<summary>Log of <code>publish</code> (last 30 lines)</summary>" in reply
    assert "hello eval" in reply
    assert "computing for eval" not in reply and "total=42" not in reply  # not a final task


def test_a_failed_task_log_is_fenced_and_pings_nobody(bot: Bot) -> None:
    reply = _run_reply(bot, "/run broken", ": failed\n")
    assert "<details open><summary>Failure log of <code>boom</code> (last 30 lines)" in reply
    start = reply.index("````text\n") + len("````text\n")
    end = reply.index("\n````\n", start)
    shown = reply[start:end].splitlines()
    assert shown[0] == "[flowbot: earlier lines not shown]"
    assert shown[1:] == ([f"noise {n}" for n in range(16, 41)]
                         + ["x ``` y", "```", f"@{JOINER}octocat look at this",
                            f"fixes #{JOINER}1", "</details>"])
    assert "@octocat" not in reply and "fixes #1" not in reply


def test_an_unknown_input_in_the_wrong_case_is_named_once(bot: Bot) -> None:
    reply = _run_reply(bot, "/run report NAME=eval", "cannot run")
    assert reply.startswith("@writer cannot run `report`: input `NAME` is unknown "
                            "(did you mean 'name'? input names are case-sensitive); "
                            "this flow takes: name.")
    assert reply.count("NAME") == 1
    assert bot.runtime.services.store.list_runs() == []


def test_a_scheduled_failure_issue_carries_the_log_tail(bot: Bot, origin: Origin) -> None:
    sha = origin.repo.head.commit.hexsha
    [flow] = validate_files({"flows/broken.yml": BROKEN}).flows
    services = bot.runtime.services
    assert services.runs is not None
    submitted = services.runs.submit(flow, {}, repo=FAKE_REPO, commit=sha,
                                     source=services.repos.path_of(FAKE_REPO),
                                     trigger=Trigger(TriggerType.SCHEDULE, "night"))
    wait_until(lambda: run_end(services.store, submitted.run_id), 120, "the run to end")
    repo = bot.fake.state.repo(*FAKE_REPO.split("/"))
    assert repo is not None
    issue = wait_until(lambda: next((i for i in repo.issues.values()
                                     if i.title == "Scheduled run of broken failed"), None),
                       30, "the failure issue")
    assert f"/runs/{submitted.run_id}" in issue.body
    assert "Failure log of <code>boom</code>" in issue.body
    assert f"@{JOINER}octocat look at this" in issue.body and "@octocat" not in issue.body
    [opened] = bot.fake.requests_to("POST", r"/repos/octo/flows/issues")
    assert opened.body["body"] == issue.body


def test_edits_of_a_running_run_are_paced_and_never_repeat(
    tmp_path: Path, fake_github: FakeGitHub, origin: Origin, busybox_image: str
) -> None:
    with _started(tmp_path, fake_github, origin, reply_edit_seconds=3600.0) as bot:
        reply = _run_reply(bot, "/run steps", ": success\n")
        [run] = bot.runtime.services.store.list_runs(repo=FAKE_REPO)
        assert len(bot.runtime.services.store.transitions(run.id)) >= 12  # a burst of events
        edits = [r.body["body"] for r in fake_github.requests_to(
            "PATCH", r"/repos/octo/flows/issues/comments/\d+")]
        assert edits and edits[-1] == reply  # the end went out at once
        assert all(a != b for a, b in zip(edits, edits[1:], strict=False))
        assert len(edits) <= 2  # no more than one while running within the interval
        assert bot.runtime.services.reporting.pacer.pending() == 0  # type: ignore[attr-defined]
