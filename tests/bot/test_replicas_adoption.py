"""A replica dies or is not the one asked: SIGKILL the replica running a long task
and another adopts it; ``/cancel`` sent to a replica that does not run the task."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import text

from runner.state.records import Status
from tests.bot.replica_kit import (  # noqa: F401  (fixtures)
    Replicas,
    containers,
    replica_db,
    replicas,
)
from tests.bot.serve_kit import WAIT_SECONDS, statuses
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.replicas]

LONG = """id: long
tasks:
  - id: nap
    image: busybox:latest
    network: none
    commands: ['echo start', 'for i in 1 2 3 4 5 6; do echo tick-$i; sleep 1; done', 'echo woke']
"""
HOLD = """id: hold
tasks:
  - id: wait
    image: busybox:latest
    network: none
    commands: ['echo holding', 'sleep 120']
"""
CANCEL_SECONDS = 15  # "within seconds": the owner polls cancel requests every second


def test_the_run_of_a_killed_replica_is_adopted_and_ends_truthfully(
    replicas: Callable[..., Replicas], fake_github: FakeGitHub  # noqa: F811
) -> None:
    group = replicas()
    sha = group.sync({"flows/long.yml": LONG})
    issue = group.comment(0, "/run long")
    run_id = group.first_run("long")
    victim = group.running_on(run_id)
    dead_id = group.owner_of(run_id)
    wait_until(lambda: statuses(fake_github, sha, "flowbot/run/long") == ["pending"],
               WAIT_SECONDS, "the pending status", interval=0.1)

    group.kill(victim)  # no chance to clean up, hand over or report
    final = group.ended(run_id)
    assert final.status is Status.SUCCESS, (final.error, group.log_tail())
    with group.engine.connect() as conn:
        adopter = conn.execute(text("SELECT adopted_by FROM replicas WHERE id = :id"),
                               {"id": dead_id}).scalar_one()
    assert adopter and adopter != dead_id
    survivor = group[(victim + 1) % len(group)]
    log = httpx.get(f"{survivor.url}/runs/{run_id}/logs/nap", timeout=5).text
    assert "start" in log and "tick-6" in log and "woke" in log  # the whole log, not a cut
    wait_until(lambda: statuses(fake_github, sha, "flowbot/run/long")[-1:] == ["success"],
               WAIT_SECONDS, "the final status", interval=0.1)
    replies = [c for c in fake_github.comments(FAKE_REPO, issue) if f"Run [{run_id}]" in c]
    assert len(replies) == 1 and ": success" in replies[0], replies
    wait_until(lambda: not containers(run_id), WAIT_SECONDS, "the container to be removed",
               interval=0.2)


def test_cancel_sent_to_a_replica_that_does_not_run_the_task(
    replicas: Callable[..., Replicas], fake_github: FakeGitHub  # noqa: F811
) -> None:
    group = replicas()
    group.sync({"flows/hold.yml": HOLD})
    issue = group.comment(0, "/run hold")
    run_id = group.first_run("hold")
    owner = group.running_on(run_id)
    other = (owner + 1) % len(group)

    group.comment(other, f"/cancel {run_id}", issue=issue)
    final = group.ended(run_id, timeout=CANCEL_SECONDS)
    assert final.status is Status.CANCELLED, (final.error, group.log_tail())
    wait_until(lambda: not containers(run_id), CANCEL_SECONDS, "the container to be removed",
               interval=0.2)
    assert group[owner].proc.poll() is None  # cancelled by its owner, not by a crash
