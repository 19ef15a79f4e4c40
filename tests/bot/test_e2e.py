"""End to end: real git repositories, the real Docker engine, the fake GitHub
server over HTTP, signed webhooks into the real app and workers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.intake.app import sign
from tests.bot.delivery_rows import find_delivery
from tests.bot.e2e_support import Bot, Origin, make_bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import pull_request_event, push_event

pytestmark = pytest.mark.docker

HELLO = """id: hello
inputs:
  who: {type: string, default: world}
tasks:
  - id: greet
    image: busybox:latest
    network: none
    commands: ['echo "hello {{ inputs.who }}"', 'cat greeting.txt']
  - id: after
    image: busybox:latest
    needs: [greet]
    network: none
    commands: ['echo done']
"""
NIGHTLY = """id: nightly
triggers:
  - id: night
    type: schedule
    cron: "30 2 * * *"
    timezone: Europe/Berlin
tasks:
  - id: t
    image: busybox:latest
    {key}: [echo night]
"""


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[Bot]:
    fake_github.add_collaborator(FAKE_REPO, "reader", "read")
    with started_bot(tmp_path, fake_github, writers=["writer"]) as made:
        yield made


def _payload(bot: Bot, payload: dict[str, object]) -> dict[str, object]:
    payload["repository"] = bot.repository()
    return payload


def _states(bot: Bot, sha: str, context: str) -> list[tuple[str, str]]:
    """Oldest first (GitHub lists a commit's statuses newest first)."""
    return [(s["state"], s["description"]) for s in reversed(bot.fake.statuses(FAKE_REPO, sha))
            if s["context"] == context]


def test_pr_merge_and_run_loop(bot: Bot) -> None:
    base = bot.origin.commit({"flows/hello.yml": HELLO, "greeting.txt": "from the repo\n"},
                             "hello flow")
    assert bot.deliver("push", _payload(bot, push_event(base, repo=FAKE_REPO,
                                                        clone_url=str(bot.origin.path)))) == 202
    bot.settle()
    assert _states(bot, base, "flowbot/sync")[-1] == (
        "success", "1 added, 0 changed, 0 removed, 0 unchanged")

    # a PR adding a broken flow: failure status, one comment with positions
    broken = bot.origin.commit({"flows/nightly.yml": NIGHTLY.format(key="comands")},
                               "nightly", branch="feature")
    number = bot.fake.add_pull(FAKE_REPO, head_sha=broken)
    opened = pull_request_event("opened", number, broken, repo=FAKE_REPO,
                                clone_url=str(bot.origin.path))
    bot.deliver("pull_request", opened)
    bot.settle()
    # every problem in one pass: the typo, and the DST warnings of the well-formed trigger
    assert _states(bot, broken, "flowbot/validate")[-1] == ("failure",
                                                            "1 of 2 flows invalid, 2 warnings")
    [comment] = bot.fake.comments(FAKE_REPO, number)
    assert re.search(r"`flows/nightly\.yml:\d+:\d+` error: .*comands", comment)
    assert re.search(r"`flows/nightly\.yml:5:11` warning: ", comment)

    # the fix: success, the same comment edited
    fixed = bot.origin.commit({"flows/nightly.yml": NIGHTLY.format(key="commands")},
                              "fix", branch="feature")
    bot.deliver("pull_request", pull_request_event("synchronize", number, fixed, repo=FAKE_REPO,
                                                   clone_url=str(bot.origin.path)))
    bot.settle()
    # 02:30 Berlin falls in the DST gap and the repeated hour: valid, with warnings
    assert _states(bot, fixed, "flowbot/validate")[-1] == ("success",
                                                           "2 flows valid, 2 warnings")
    [comment] = bot.fake.comments(FAKE_REPO, number)
    assert "warning:" in comment and "Problems" in comment
    assert "- added: `nightly`" in comment and re.search(r"02:30 CES?T", comment)

    # merge: schedules registered
    merged = bot.origin.merge("feature")
    bot.deliver("push", push_event(merged, before=base, repo=FAKE_REPO,
                                   clone_url=str(bot.origin.path)))
    bot.settle()
    schedules = bot.client.get("/api/schedules").json()
    assert [(s["flow_id"], s["trigger_id"]) for s in schedules] == [("nightly", "night")]
    assert schedules[0]["state"] == "active" and schedules[0]["next_fires"]

    # /run by a writer from an issue: containers ran, statuses and comment right
    issue = bot.fake.add_issue(FAKE_REPO, "Run it")
    bot.deliver("issue_comment", bot.comment(issue, '/run hello "who=big world"', "writer"))
    bot.settle()
    [run] = bot.runtime.services.store.list_runs(repo=FAKE_REPO)
    final = bot.wait_run(run.id)
    assert final.status.value == "success" and final.commit == merged
    states = _states(bot, merged, "flowbot/run/hello")
    assert states[0][0] == "pending" and states[-1] == ("success", f"Run {run.id} succeeded")
    url = bot.fake.statuses(FAKE_REPO, merged)[0]["target_url"]
    assert url == f"http://flowbot.test/runs/{run.id}"
    _, reply = bot.fake.comments(FAKE_REPO, issue)
    assert f"Run [{run.id}]" in reply and "success" in reply and "| `greet` |" in reply
    page = bot.client.get(f"/runs/{run.id}")
    assert page.status_code == 200 and "hello big world" in page.text
    log = bot.client.get(f"/runs/{run.id}/logs/greet").text
    assert log.splitlines() == ["hello big world", "from the repo"]  # the commit's files
    assert [r["id"] for r in bot.client.get("/api/runs").json()] == [run.id]


def test_permissions_unknown_flows_redelivery_and_signatures(bot: Bot) -> None:
    base = bot.origin.commit({"flows/hello.yml": HELLO}, "hello flow")
    bot.deliver("push", push_event(base, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    issue = bot.fake.add_issue(FAKE_REPO, "Run it")

    bot.settle()
    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "reader"), delivery="r-1")
    typo = bot.comment(issue, "/run helo", "writer")
    bot.deliver("issue_comment", typo, delivery="typo-1")
    assert bot.deliver("issue_comment", typo, delivery="typo-1") == 200  # redelivered
    bot.settle()
    replies = bot.fake.comments(FAKE_REPO, issue)[2:]  # after the two commands
    assert len(replies) == 2  # the redelivery was not processed again
    assert [r for r in replies if r.startswith("Sorry @reader, `/run` needs write access")]
    assert [r for r in replies if '(did you mean "hello"?)' in r]
    assert bot.runtime.services.store.list_runs() == []

    body = b'{"zen": "x"}'
    response = bot.client.post("/webhook", content=body, headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": "bad-sig",
        "X-Hub-Signature-256": sign("not-the-secret", body)})
    assert response.status_code == 401
    assert find_delivery(bot.runtime.services.deliveries, "bad-sig") is None


def test_as_a_github_app_a_check_run_carries_line_annotations(
    tmp_path: Path, fake_github: FakeGitHub, busybox_image: str
) -> None:
    from bot.github.client import HttpPolicy, PyGithubClients
    from tests.fakegithub.fixtures import app_key_pair
    from tests.fakes import with_installation

    private, public = app_key_pair()
    fake_github.add_app(4242, public, slug="flowbot")
    fake_github.add_installation(4242, 77)
    origin = Origin(tmp_path / "origin")
    bot = make_bot(tmp_path, fake_github, origin, github=PyGithubClients(
        fake_github.url, app_id="4242", private_key=private, policy=HttpPolicy.fast()))
    bot.runtime.start()
    try:
        sha = origin.commit({"flows/nightly.yml": NIGHTLY.format(key="comands")}, "broken")
        number = fake_github.add_pull(FAKE_REPO, head_sha=sha)
        bot.deliver("pull_request", with_installation(pull_request_event(
            "opened", number, sha, repo=FAKE_REPO, clone_url=str(origin.path)), 77))
        bot.settle()
    finally:
        bot.runtime.stop()
    repo = fake_github.state.repo(*FAKE_REPO.split("/"))
    assert repo is not None
    [check] = repo.check_runs.values()
    assert check["head_sha"] == sha and check["conclusion"] == "failure"
    [sent] = fake_github.requests_to("POST", r"/repos/octo/flows/check-runs")
    annotations = sent.body["output"]["annotations"]  # checked against GitHub's schema
    assert any(a["path"] == "flows/nightly.yml" and "comands" in a["message"]
               for a in annotations)
