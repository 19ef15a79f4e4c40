"""FLOWBOT_RUNS_PER_USER_PER_HOUR for ``/run`` end to end: signed webhooks into the
real app and workers, the fake GitHub over HTTP, a real git repository and the real
Docker engine. A writer over the budget gets the reason on the command's line of the
one reply and nothing runs; a replay of the same delivery finds the runs it started
(not counted twice) and starts nothing new; another writer has a budget of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.handlers import build_router
from bot.intake.router import Event
from tests.bot.e2e_support import HELLO, Bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import push_event

pytestmark = pytest.mark.docker


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github, writers=["writer", "other"],
                     runs_per_user_per_hour=2) as made:
        yield made


def _posted(bot: Bot, number: int) -> list[str]:
    """The bodies flowbot posted on issue ``number``, in order."""
    return [r.body["body"] for r in bot.fake.requests_to(
        "POST", rf"/repos/octo/flows/issues/{number}/comments")]


def _edited(bot: Bot) -> list[str]:
    """The bodies flowbot wrote over its comments, in order."""
    return [r.body["body"] for r in bot.fake.requests_to(
        "PATCH", r"/repos/octo/flows/issues/comments/\d+")]


def test_a_writer_over_the_hourly_budget_is_told_and_nothing_more_runs(bot: Bot) -> None:
    base = bot.origin.commit({"flows/hello.yml": HELLO}, "hello flow")
    bot.deliver("push", push_event(base, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    bot.settle()
    store = bot.runtime.services.store
    issue = bot.fake.add_issue(FAKE_REPO, "runs")
    payload = bot.comment(issue, "/run hello\n/run hello\n/run hello", "writer")
    bot.deliver("issue_comment", payload, delivery="budget-1")
    bot.settle()
    started = store.list_runs(repo=FAKE_REPO)
    assert len(started) == 2
    for run in started:
        assert bot.wait_run(run.id).status.value == "success"
    first = min(started, key=lambda r: r.created_at)
    free = first.created_at + timedelta(hours=1)
    at = free.replace(second=0, microsecond=0)
    at += timedelta(minutes=1) if at < free else timedelta(0)
    message = (f"@writer has started 2 runs of {FAKE_REPO} in the last hour "
               f"(FLOWBOT_RUNS_PER_USER_PER_HOUR); try again after {at:%H:%M} UTC or ask an "
               "operator to raise it")
    [reply] = _posted(bot, issue)
    assert message in reply
    for run in started:
        assert f"Run [{run.id}]" in reply

    # the same delivery again (a worker retrying it): its runs are found, none is new
    build_router().dispatch(Event("issue_comment", payload, "budget-1"),
                            bot.runtime.services)
    assert {r.id for r in store.list_runs(repo=FAKE_REPO)} == {r.id for r in started}
    last = _edited(bot)[-1]
    assert message in last and all(f"Run [{r.id}]" in last for r in started)
    assert len(_posted(bot, issue)) == 1

    # a new comment: refused, nothing runs
    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "writer"))
    bot.settle()
    assert len(store.list_runs(repo=FAKE_REPO)) == 2
    refusal = _posted(bot, issue)[1]
    assert message in refusal and "Run [" not in refusal

    # another writer has a budget of their own
    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "other"))
    bot.settle()
    runs = store.list_runs(repo=FAKE_REPO)
    assert len(runs) == 3 and {r.trigger.actor for r in runs} == {"writer", "other"}
