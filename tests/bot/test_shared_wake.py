"""A registry sync through one runtime wakes another runtime's scheduler on the same
PostgreSQL database, through the shared wake (LISTEN/NOTIFY): the other scheduler's
fallback sleep is an hour, so only the notification explains its firing the new
schedule at its first slot."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import runner.scheduling.scheduler as scheduler_module
from runner.clock import ScaledClock
from runner.state.notify import SharedWake
from tests.bot.e2e_support import Origin, make_bot
from tests.conftest import fresh_database
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until
from tests.runner.scheduling_support import fire_rows, make_flow

pytestmark = pytest.mark.postgres
WAIT = 20.0
START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
RATE = 60.0  # a minute of schedule time per real second


def _waiting(wake: SharedWake) -> bool:
    """True while a thread (the scheduler) waits on ``wake``."""
    return bool(getattr(wake, "_cond")._waiters)  # noqa: B009  (threading's own state)


def test_a_sync_through_one_runtime_wakes_the_scheduler_of_another(
    tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "MAX_SLEEP", 3600.0)  # no fallback within the test
    server = os.environ.get("FLOWBOT_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("PostgreSQL is needed: set FLOWBOT_TEST_POSTGRES_URL")
    clock = ScaledClock(START, time.time(), RATE)
    with fresh_database(server, f"flowbot_wake_{os.getpid()}_{uuid.uuid4().hex[:8]}") as url:
        syncing, sleeping = (make_bot(tmp_path / name, fake_github,
                                      Origin(tmp_path / name / "origin"), clock=clock,
                                      database_url=url) for name in "ab")
        wake = sleeping.runtime.services.wake_scheduler
        assert isinstance(wake, SharedWake)
        notifier = sleeping.runtime.notifier
        assert notifier is not None
        notifier.start()
        stop = threading.Event()
        thread = threading.Thread(target=sleeping.runtime.scheduler.run_forever, args=(stop,),
                                  daemon=True)
        try:
            wait_until(lambda: notifier.backend_pid, WAIT, "B's listener to connect")
            thread.start()
            wait_until(lambda: _waiting(wake), WAIT, "B's scheduler to sleep (nothing is due)")
            flow = make_flow("tick", {"id": "minutely", "cron": "* * * * *"})
            syncing.runtime.services.registry.sync(FAKE_REPO, "c1", [flow])
            engine = sleeping.runtime.services.engine
            instance = sleeping.runtime.scheduler._instance_id
            wait_until(lambda: fire_rows(engine, flow_id="tick", instance_id=instance),
                       WAIT, "B's scheduler to fire the schedule A synced")
        finally:
            stop.set()
            wake.set_here()
            thread.join(10)
            notifier.stop()
            for bot in (syncing, sleeping):
                bot.runtime.services.engine.dispose()
