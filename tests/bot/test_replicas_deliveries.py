"""Deliveries spread over three replicas on one PostgreSQL: each is handled
exactly once, whichever replica took it in."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from bot.intake.deliveries import Delivery, DeliveryStatus
from tests.bot.delivery_rows import all_deliveries
from tests.bot.replica_kit import Replicas, replica_db, replicas  # noqa: F401  (fixtures)
from tests.bot.serve_kit import WAIT_SECONDS
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.replicas]

PER_REPLICA = 5
ONE = "id: one\ntasks:\n  - id: t\n    image: busybox:latest\n    commands: ['true']\n"


def test_deliveries_sent_to_every_replica_are_each_handled_once(
    replicas: Callable[..., Replicas], fake_github: FakeGitHub  # noqa: F811
) -> None:
    group = replicas()
    group.sync({"flows/one.yml": ONE})
    sends, issues = [], []
    for index in range(len(group) * PER_REPLICA):
        issue, payload = group.comment_event("/run nosuch")  # a reply each, no container
        issues.append(issue)
        sends.append(partial(group[index % len(group)].deliver, "issue_comment", payload))
    assert group.at_once(sends) == [202] * len(sends)

    def replied() -> bool:
        return all(any("no flow `nosuch`" in c for c in fake_github.comments(FAKE_REPO, i))
                   for i in issues)
    wait_until(replied, WAIT_SECONDS, "a reply on every issue", interval=0.2)

    def settled() -> list[Delivery] | None:
        rows = all_deliveries(group.deliveries)
        return rows if all(d.status is DeliveryStatus.DONE for d in rows) else None
    done = [d for d in wait_until(settled, WAIT_SECONDS, "every delivery to be done",
                                  interval=0.2) if d.event == "issue_comment"]
    assert len(done) == len(sends)
    assert all(d.attempts == 1 for d in done), [(d.id, d.attempts) for d in done]
    for issue in issues:  # the bot's own comments: exactly one reply each
        replies = [c for c in fake_github.comments(FAKE_REPO, issue) if "nosuch" in c
                   and c != "/run nosuch"]
        assert len(replies) == 1, (issue, replies, group.log_tail())
