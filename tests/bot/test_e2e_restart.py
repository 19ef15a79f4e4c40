"""End to end across a crash: ``flowbot serve`` is killed (SIGKILL) while a run's
container is running, started again on the same data directory, and the run
ends in a truthful state that is reported to the same status and comment."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from runner.clock import SystemClock
from runner.state.db import connect
from runner.state.records import Status
from runner.state.store import RunStore
from tests.bot.serve_kit import (
    WAIT_SECONDS,
    Served,
    ask_to_run_slow,
    served,  # noqa: F401  (the fixture)
    serving_the_slow_flow,
    statuses,
    succeeded,
)
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until

pytestmark = pytest.mark.docker


def test_killed_mid_run_then_restarted_reports_the_truthful_end(
    tmp_path: Path, fake_github: FakeGitHub, served: list[Served]  # noqa: F811
) -> None:
    scene = serving_the_slow_flow(tmp_path, fake_github, served)
    issue = ask_to_run_slow(scene, fake_github)
    store = RunStore(connect(f"sqlite:///{scene.data_dir / 'flowbot.db'}"), SystemClock())
    run_id = wait_until(lambda: next(
        (r.id for r in store.list_runs() if any(a.handle for a in store.attempts(r.id))), None),
        WAIT_SECONDS, "the run to start its container", interval=0.1)
    # the run no longer waits for GitHub before starting: pending follows soon after
    wait_until(lambda: statuses(fake_github, scene.sha, "flowbot/run/slow") == ["pending"],
               WAIT_SECONDS, "the pending status", interval=0.1)

    scene.first.kill()  # no chance to clean up or report
    assert store.get_run(run_id).status is Status.RUNNING  # type: ignore[union-attr]

    second = Served(scene.data_dir, fake_github)
    served.append(second)
    succeeded(scene, fake_github, store, run_id)
    replies = [c for c in fake_github.comments(FAKE_REPO, issue) if f"Run [{run_id}]" in c]
    assert len(replies) == 1 and ": success" in replies[0]
    log = httpx.get(f"{second.url}/runs/{run_id}/logs/nap", timeout=5).text
    assert "start" in log and "woke" in log
