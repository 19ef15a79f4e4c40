"""A webhook taken in by one replica's app wakes another replica's delivery workers
through PostgreSQL LISTEN/NOTIFY: the other's poll is set so long that only the
notification explains the delivery being processed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.intake.deliveries import Delivery, DeliveryStore
from bot.intake.router import Event
from bot.intake.worker import Workers
from runner.clock import SystemClock
from runner.state.notify import DELIVERIES, Notifier
from tests.bot.e2e_support import Origin, make_bot
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until

pytestmark = [pytest.mark.postgres,
              pytest.mark.parametrize("db_engine", ["postgres"], indirect=True)]
NEVER = 60.0  # seconds: a poll this long never fires within the test's wait
WAIT = 15.0


class LookingDeliveries(DeliveryStore):
    """A delivery store that counts the claims that found nothing (a worker about
    to wait for a wake-up)."""

    idle_looks = 0

    def claim(self, limit: int = 1) -> list[Delivery]:
        claimed = super().claim(limit)
        if not claimed:
            self.idle_looks += 1
        return claimed


@pytest.fixture
def listening_workers(db_engine: Engine) -> Iterator[tuple[LookingDeliveries, list[Event]]]:
    """Replica B: delivery workers polling every minute, woken by notifications."""
    store = LookingDeliveries(db_engine, SystemClock(), replica="replica-b")
    handled: list[Event] = []
    lock = threading.Lock()

    def dispatch(event: Event) -> None:
        with lock:
            handled.append(event)
    workers = Workers(store, dispatch, count=1, poll=NEVER)
    notifier = Notifier(db_engine)
    notifier.on(DELIVERIES, lambda _payload: workers.wake())
    notifier.start()
    wait_until(lambda: notifier.backend_pid, WAIT, "B's listener to connect")
    workers.start()
    wait_until(lambda: store.idle_looks, WAIT, "B's worker to find nothing and wait")
    yield store, handled
    workers.stop()
    notifier.stop()


def test_a_webhook_taken_in_by_a_is_handled_by_bs_workers_at_once(
    tmp_path: Path, fake_github: FakeGitHub, postgres_url: str,
    listening_workers: tuple[LookingDeliveries, list[Event]],
) -> None:
    _store, handled = listening_workers
    a = make_bot(tmp_path, fake_github, Origin(tmp_path / "origin"),
                 data_dir=tmp_path / "data-a", database_url=postgres_url)  # never started
    assert a.deliver("ping", {"zen": "Keep it logically awesome."}, delivery="d-1") == 202
    wait_until(lambda: [e.delivery_id for e in handled] == ["d-1"], WAIT,
               "B's workers to handle the delivery A took in")


def test_a_runtime_listens_while_it_runs(
    tmp_path: Path, fake_github: FakeGitHub, postgres_url: str, db_engine: Engine,
) -> None:
    bot = make_bot(tmp_path, fake_github, Origin(tmp_path / "origin"),
                   database_url=postgres_url)
    notifier = bot.runtime.notifier
    assert notifier is not None
    bot.runtime.start()
    try:
        pid = wait_until(lambda: notifier.backend_pid, WAIT, "the runtime's listener")
    finally:
        bot.runtime.stop()
    assert notifier.backend_pid is None

    def gone() -> bool:
        with db_engine.connect() as conn:
            return not conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                    {"p": pid}).scalar()
    wait_until(gone, WAIT, "the listening connection to close")
