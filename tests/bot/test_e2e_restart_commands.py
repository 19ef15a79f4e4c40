"""A crash right after ``/run`` was accepted: ``flowbot serve`` is killed
(SIGKILL) after the run is recorded but before the delivery is finished, so
the delivery is queued again at start-up. The replay finds the run the first
process started: the flow runs once, with one reply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.deliveries import DeliveryStatus, DeliveryStore
from runner.clock import SystemClock
from runner.db import connect
from runner.store import RunStore
from tests.bot.e2e_support import Origin
from tests.bot.test_e2e_restart import SLOW, Served, _statuses, _until
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import issue_comment_event, push_event

pytestmark = pytest.mark.docker

REPLY_POSTS = r"/issues/\d+/comments$"


@pytest.fixture
def served(busybox_image: str) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for one in started:
        one.stop()


def test_a_run_accepted_just_before_a_crash_runs_once_after_the_replay(
    tmp_path: Path, fake_github: FakeGitHub, served: list[Served]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    origin = Origin(tmp_path / "origin")
    sha = origin.commit({"flows/slow.yml": SLOW}, "slow flow")
    fake_github.add_collaborator(FAKE_REPO, "writer", "write")
    first = Served(data_dir, fake_github)
    served.append(first)
    first.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(origin.path)))
    _until("the sync status", lambda: "success" in _statuses(fake_github, sha, "flowbot/sync"))

    # GitHub keeps failing the reply: the handler is still retrying it, after the run
    # was recorded and before the delivery is finished, when the process is killed
    fake_github.fail_next(REPLY_POSTS, count=10_000, status=502, method="POST")
    issue = fake_github.add_issue(FAKE_REPO, "Run it")
    repo = fake_github.state.repo(*FAKE_REPO.split("/"))
    assert repo is not None
    comment = fake_github.state.add_comment(repo, issue, "/run slow", "writer")
    first.deliver("issue_comment", issue_comment_event(
        "/run slow", login="writer", number=issue, repo=FAKE_REPO, comment_id=comment.id,
        clone_url=str(origin.path)))
    engine = connect(f"sqlite:///{data_dir / 'flowbot.db'}")
    store, deliveries = RunStore(engine, SystemClock()), DeliveryStore(engine, SystemClock())
    _until("the run to be recorded", store.list_runs)
    _until("the reply to be tried", lambda: fake_github.requests_to("POST", r".*" + REPLY_POSTS))
    first.kill()
    assert deliveries.count(DeliveryStatus.PROCESSING) == 1  # the /run delivery, unfinished

    with fake_github._lock:  # GitHub is fine again (the fake has no public "clear")
        fake_github._faults.clear()
    second = Served(data_dir, fake_github)
    served.append(second)
    _until("the replayed delivery", lambda: deliveries.count(DeliveryStatus.DONE) == 2)
    [run] = store.list_runs()  # the replay started no second run
    final = _until("the run to end", lambda: (
        r if (r := store.get_run(run.id)) is not None and r.status.terminal else None))
    assert final.status.value == "success"
    _until("the final status", lambda: _statuses(fake_github, sha, "flowbot/run/slow")[-1:]
           == ["success"])
    replies = [c for c in fake_github.comments(FAKE_REPO, issue) if "flowbot:" in c]
    assert len(replies) == 1 and f"Run [{run.id}]" in replies[0]
    _until("the reply to show the end", lambda: ": success" in next(
        c for c in fake_github.comments(FAKE_REPO, issue) if "flowbot:" in c))
    assert len(store.list_runs()) == 1
