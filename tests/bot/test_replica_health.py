"""A replica that cannot write to its PostgreSQL database leaves the load balancer:
``/healthz`` answers 503 naming why once its heartbeat has failed for longer than
the lease (reads still work, so ``SELECT 1`` alone would call it healthy), and 200
again once a heartbeat renews the lease. ``/metrics`` shows the replicas as the
heartbeat sees them: live replicas, adoptions, failed renewals, and whether the
notification listener is connected."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.adoption import Adoption
from tests.bot.e2e_support import Bot, Origin, make_bot
from tests.bot.test_metrics import Samples, scrape, value
from tests.conftest import fresh_database
from tests.fakegithub.server import FakeGitHub
from tests.polling import wait_until

pytestmark = pytest.mark.postgres
HEARTBEAT, LEASE = 0.1, 1.5
WAIT = 20.0
TOKEN = "health-t0ken"


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database of this test's own (its settings are altered)."""
    server = os.environ.get("FLOWBOT_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("PostgreSQL is needed: set FLOWBOT_TEST_POSTGRES_URL")
    with fresh_database(server, f"flowbot_health_{os.getpid()}_{uuid.uuid4().hex[:8]}") as url:
        yield url


def _replica(tmp_path: Path, fake_github: FakeGitHub, url: str, name: str) -> Bot:
    return make_bot(tmp_path / name, fake_github, Origin(tmp_path / name / "origin"),
                    database_url=url, api_token=TOKEN, replica_heartbeat_seconds=HEARTBEAT,
                    replica_lease_seconds=LEASE)


def _adoption(bot: Bot) -> Adoption:
    adoption = bot.runtime.adoption
    assert adoption is not None
    return adoption


@contextmanager
def heartbeat(bot: Bot) -> Iterator[Adoption]:
    """``bot``'s replica registered and its heartbeat thread beating (runs never
    start: no engine needed)."""
    adoption = _adoption(bot)
    adoption.first_pass()
    stop = threading.Event()
    thread = threading.Thread(target=adoption.run_forever, args=(stop, lambda: False),
                              daemon=True)
    thread.start()
    try:
        yield adoption
    finally:
        stop.set()
        thread.join(10)


def _read_only(url: str, on: bool) -> None:
    """Make the database refuse (or accept again) writes from every session: new
    sessions get the setting, the open ones are ended (the pool reconnects)."""
    server = os.environ["FLOWBOT_TEST_POSTGRES_URL"]
    name = url.rsplit("/", 1)[1]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = '
                              + ("on" if on else "off")))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"),
                         {"name": name})
    finally:
        admin.dispose()


def _metrics(bot: Bot) -> Samples:
    return scrape(bot.client, Authorization=f"Bearer {TOKEN}")


def test_healthz_is_503_while_the_lease_cannot_be_renewed_and_200_again_after(
    tmp_path: Path, fake_github: FakeGitHub, database: str,
) -> None:
    bot = _replica(tmp_path, fake_github, database, "a")
    with heartbeat(bot):
        healthy = bot.client.get("/healthz")
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["replicas"] == 1
        _read_only(database, True)

        def refused() -> dict[str, str] | None:
            answer = bot.client.get("/healthz")
            body: dict[str, str] = answer.json()
            return body if answer.status_code == 503 and "read-only" in body["reason"] \
                else None
        body = wait_until(refused, WAIT, "/healthz to answer 503 for the read-only database")
        assert body is not None
        assert body["error"] == "lease not renewed"
        assert body["reason"].startswith("cannot renew its lease in the database: ")
        assert "cannot execute UPDATE in a read-only transaction" in body["reason"]
        assert value(_metrics(bot), "flowbot_replica_heartbeat_failures_total")

        _read_only(database, False)
        wait_until(lambda: bot.client.get("/healthz").status_code == 200, WAIT,
                   "/healthz to answer 200 once a heartbeat renews the lease")
    bot.runtime.services.engine.dispose()


def test_healthz_is_503_after_the_replica_was_adopted_until_it_beats_again(
    tmp_path: Path, fake_github: FakeGitHub, database: str,
) -> None:
    stalled, other = (_replica(tmp_path, fake_github, database, name) for name in "ab")
    _adoption(stalled).first_pass()  # registered, then silent past its lease
    with heartbeat(other):
        wait_until(lambda: value(_metrics(other), "flowbot_replica_adoptions_total"), WAIT,
                   "the other replica to adopt the silent one")
    adoption = _adoption(stalled)
    adoption.beat()  # the stalled one wakes: its lease is gone, it registers again
    answer = stalled.client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["reason"].startswith(
        "cannot renew its lease in the database: another replica adopted its work")
    assert value(_metrics(stalled), "flowbot_replica_heartbeat_failures_total") == 1
    adoption.beat()
    assert stalled.client.get("/healthz").status_code == 200
    for bot in (stalled, other):
        bot.runtime.services.engine.dispose()


def test_metrics_show_live_replicas_adoptions_and_the_listener(
    tmp_path: Path, fake_github: FakeGitHub, database: str,
) -> None:
    gone, live = (_replica(tmp_path, fake_github, database, name) for name in "ab")
    notifier = live.runtime.notifier
    assert notifier is not None
    assert value(_metrics(live), "flowbot_notify_connected") == 0
    notifier.start()
    try:
        wait_until(lambda: value(_metrics(live), "flowbot_notify_connected") == 1, WAIT,
                   "the listener to connect")
        with heartbeat(gone), heartbeat(live):
            wait_until(lambda: value(_metrics(live), "flowbot_replicas_live") == 2, WAIT,
                       "the live replica to count both")
        with heartbeat(live):  # the other stopped beating: its lease runs out
            wait_until(lambda: value(_metrics(live), "flowbot_replica_adoptions_total") == 1,
                       WAIT, "the live replica to adopt the silent one")
            wait_until(lambda: value(_metrics(live), "flowbot_replicas_live") == 1, WAIT,
                       "the live replica to count itself alone")
            samples = _metrics(live)
            assert value(samples, "flowbot_replica_heartbeat_failures_total") == 0
    finally:
        notifier.stop()
    assert value(_metrics(live), "flowbot_notify_connected") == 0
    for bot in (gone, live):
        bot.runtime.services.engine.dispose()
