"""A crash right after ``/run`` was accepted: ``flowbot serve`` is killed
(SIGKILL) after the run is recorded but before the delivery is finished, so
the delivery is queued again at start-up. The replay finds the run the first
process started: the flow runs once, with one reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.intake.deliveries import DeliveryStatus, DeliveryStore
from runner.clock import SystemClock
from runner.state.db import connect
from runner.state.store import RunStore
from tests.bot.delivery_rows import delivery_count
from tests.bot.serve_kit import (
    WAIT_SECONDS,
    Served,
    ask_to_run_slow,
    served,  # noqa: F401  (the fixture)
    serving_the_slow_flow,
    succeeded,
)
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until

pytestmark = pytest.mark.docker

REPLY_POSTS = r"/issues/\d+/comments$"


def test_a_run_accepted_just_before_a_crash_runs_once_after_the_replay(
    tmp_path: Path, fake_github: FakeGitHub, served: list[Served]  # noqa: F811
) -> None:
    scene = serving_the_slow_flow(tmp_path, fake_github, served)
    # GitHub keeps failing the reply: the handler is still retrying it, after the run
    # was recorded and before the delivery is finished, when the process is killed
    fake_github.fail_next(REPLY_POSTS, count=10_000, status=502, method="POST")
    issue = ask_to_run_slow(scene, fake_github)
    engine = connect(f"sqlite:///{scene.data_dir / 'flowbot.db'}")
    store, deliveries = RunStore(engine, SystemClock()), DeliveryStore(engine, SystemClock())
    wait_until(store.list_runs, WAIT_SECONDS, "the run to be recorded", interval=0.1)
    wait_until(lambda: fake_github.requests_to("POST", r".*" + REPLY_POSTS), WAIT_SECONDS,
               "the reply to be tried", interval=0.1)
    scene.first.kill()
    # the /run delivery, unfinished
    assert delivery_count(deliveries, DeliveryStatus.PROCESSING) == 1

    with fake_github._lock:  # GitHub is fine again (the fake has no public "clear")
        fake_github._faults.clear()
    served.append(Served(scene.data_dir, fake_github))
    wait_until(lambda: delivery_count(deliveries, DeliveryStatus.DONE) == 2, WAIT_SECONDS,
               "the replayed delivery", interval=0.1)
    [run] = store.list_runs()  # the replay started no second run
    succeeded(scene, fake_github, store, run.id)
    replies = [c for c in fake_github.comments(FAKE_REPO, issue) if "flowbot:" in c]
    assert len(replies) == 1 and f"Run [{run.id}]" in replies[0]
    wait_until(lambda: ": success" in next(
        c for c in fake_github.comments(FAKE_REPO, issue) if "flowbot:" in c),
        WAIT_SECONDS, "the reply to show the end", interval=0.1)
    assert len(store.list_runs()) == 1
