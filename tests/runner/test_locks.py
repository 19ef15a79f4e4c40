"""Flow locks: one holder per flow, across processes on PostgreSQL (two FlowLocks
stand for two replicas: they share no threading lock, only the server's advisory
lock), within the process on SQLite; released when the block raises."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from runner.state.locks import FlowLocks
from tests.polling import wait_until

_WAITING = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
_FREE = sa.text("SELECT pg_try_advisory_lock(hashtext(:key)), pg_advisory_unlock_all()")


def _second_holder(locks: FlowLocks, flow: str, inside: threading.Event) -> threading.Thread:
    def hold() -> None:
        with locks.hold("o/r", flow):
            inside.set()
    thread = threading.Thread(target=hold)
    thread.start()
    return thread


@pytest.mark.parametrize("db_engine", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_a_replica_waits_for_the_flow_another_replica_holds(db_engine: Engine) -> None:
    first, second = FlowLocks(db_engine), FlowLocks(db_engine)
    inside, other_flow = threading.Event(), threading.Event()
    with first.hold("o/r", "nightly"):
        waiter = _second_holder(second, "nightly", inside)
        with db_engine.connect() as conn:
            wait_until(lambda: conn.execute(_WAITING).scalar() == 1, 10,
                       "the second replica to wait on the server's lock")
        assert not inside.is_set()
        _second_holder(second, "weekly", other_flow).join()  # another flow: no wait
        assert other_flow.is_set()
    waiter.join(10)
    assert inside.is_set()


@pytest.mark.parametrize("db_engine", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_the_server_lock_is_released_when_the_block_raises(db_engine: Engine) -> None:
    locks = FlowLocks(db_engine)
    with pytest.raises(RuntimeError), locks.hold("o/r", "nightly"):
        raise RuntimeError("a failed admission")
    with db_engine.connect() as conn:
        taken, _ = conn.execute(_FREE, {"key": "flowbot:flow:o/r:nightly"}).one()
    assert taken  # nobody holds it any more


def test_threads_of_one_process_take_turns_on_sqlite(sqlite_engine: Engine) -> None:
    locks = FlowLocks(sqlite_engine)
    inside, most, entries = [0], [0], [0]

    def admit() -> None:
        for _ in range(200):
            with locks.hold("o/r", "nightly"):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0)  # let another thread run while inside
                entries[0] += 1
                inside[0] -= 1
    threads = [threading.Thread(target=admit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (most[0], entries[0]) == (1, 1200)
