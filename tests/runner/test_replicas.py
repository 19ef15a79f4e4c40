"""Replica leases judged by the database's clock: a replica that stops beating is
adopted by exactly one other within the lease, a stopped one at once; a replica
process killed for real is adopted too."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from runner.errors import ConfigError
from runner.state.replicas import ReplicaRegistry, new_replica_id, replicas
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT, LEASE = 0.1, 0.8  # small, so a test waits a second, not ten


def _registry(engine: Engine, name: str | None = None) -> ReplicaRegistry:
    registry = ReplicaRegistry(engine, heartbeat_seconds=HEARTBEAT, lease_seconds=LEASE,
                               replica_id=name)
    registry.register()
    return registry


def _beating(registry: ReplicaRegistry, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(HEARTBEAT):
            registry.beat()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_an_id_names_host_pid_and_a_random_part() -> None:
    first, second = new_replica_id(), new_replica_id()
    assert first != second and first.rsplit("-", 2)[1].isdigit()


def test_a_lease_no_longer_than_the_heartbeat_is_refused(db_engine: Engine) -> None:
    with pytest.raises(ConfigError, match="FLOWBOT_REPLICA_LEASE_SECONDS.*more than"):
        ReplicaRegistry(db_engine, heartbeat_seconds=2, lease_seconds=2)


def test_a_silent_replica_is_adopted_once_by_one_of_the_live_ones(db_engine: Engine) -> None:
    dead = _registry(db_engine, "dead")
    racers = [_registry(db_engine, f"live-{n}") for n in range(3)]
    stop = threading.Event()
    beats = [_beating(r, stop) for r in racers]
    won: Counter[str] = Counter()
    lock = threading.Lock()

    def race(registry: ReplicaRegistry) -> None:
        while not stop.is_set():
            for replica_id in registry.take_dead():
                with lock:
                    won[f"{replica_id}<-{registry.id}"] += 1
            stop.wait(0.01)

    threads = [threading.Thread(target=race, args=(r,), daemon=True) for r in racers]
    for thread in threads:
        thread.start()
    try:
        assert {r.id for r in racers[0].live()} >= {"dead", "live-0"}  # it just registered
        wait_until(lambda: won, 10 * LEASE, "a live replica to adopt the silent one")
        stop.wait(3 * LEASE)  # time for a second adoption, which must not happen
    finally:
        stop.set()
        for thread in [*threads, *beats]:
            thread.join(5)
    assert sum(won.values()) == 1 and next(iter(won)).startswith("dead<-live-")
    assert dead.id not in {r.id for r in racers[0].live()}
    assert {r.id for r in racers[0].live()} == {"live-0", "live-1", "live-2"}


def test_a_beating_replica_is_never_adopted(db_engine: Engine) -> None:
    steady, other = _registry(db_engine, "steady"), _registry(db_engine, "other")
    stop = threading.Event()
    beats = [_beating(steady, stop), _beating(other, stop)]
    try:
        for _ in range(int(3 * LEASE / HEARTBEAT)):
            assert other.take_dead() == []
            stop.wait(HEARTBEAT)
    finally:
        stop.set()
        for thread in beats:
            thread.join(5)


def test_a_stopped_replica_is_adopted_at_once(db_engine: Engine) -> None:
    leaving, staying = _registry(db_engine, "leaving"), _registry(db_engine, "staying")
    leaving.stop()
    assert staying.take_dead() == ["leaving"]  # no lease to wait for
    assert staying.take_dead() == []
    assert [r.id for r in staying.live()] == ["staying"] and staying.alone()


def test_a_replica_adopted_while_stalled_registers_again(db_engine: Engine) -> None:
    stalled, adopter = _registry(db_engine, "stalled"), _registry(db_engine, "adopter")
    with db_engine.begin() as conn:  # as if it had been adopted while it stalled
        conn.execute(update(replicas).where(replicas.c.id == "stalled")
                     .values(adopted_by="adopter"))
    assert stalled.beat() is False
    assert stalled.beat() is True
    assert {r.id for r in adopter.live()} == {"stalled", "adopter"}


# A process that registers a replica (with the default lease) and ends.
REGISTER = """
import sys
from runner.state.db import connect
from runner.state.replicas import ReplicaRegistry
registry = ReplicaRegistry(connect(sys.argv[1]))
registry.register()
print(registry.id)
"""

# A replica process that registers, beats, and is then killed the hard way.
CHILD = """
import sys, time
from runner.state.db import connect
from runner.state.replicas import ReplicaRegistry
registry = ReplicaRegistry(connect(sys.argv[1]), heartbeat_seconds=0.1, lease_seconds=0.8)
registry.register()
print(registry.id, flush=True)
while True:
    registry.beat()
    time.sleep(0.1)
"""


@pytest.mark.postgres
def test_a_killed_replica_process_is_adopted_within_the_lease(postgres_url: str) -> None:
    from runner.state.db import connect

    engine = connect(postgres_url)
    with engine.begin() as conn:
        conn.execute(delete(replicas))  # the session's database: other tests' replicas
    child = subprocess.Popen([sys.executable, "-c", CHILD, postgres_url], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        child_id = child.stdout.readline().strip()
        adopter = _registry(engine)
        wait_until(lambda: child_id in {r.id for r in adopter.live()}, 30, "the child to beat")
        assert adopter.take_dead() == []  # alive: never adopted
        child.kill()
        child.wait(10)
        won = wait_until(adopter.take_dead, 10 * LEASE, "the killed replica's adoption")
        assert won == [child_id]
        with engine.connect() as conn:
            row = conn.execute(select(replicas).where(replicas.c.id == child_id)).one()
        assert row.adopted_by == adopter.id and row.stopped_at is None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        engine.dispose()


def test_on_a_held_sqlite_file_another_process_replica_is_adopted_at_once(
    tmp_path: Path,
) -> None:
    from runner.state.db import connect

    url = f"sqlite:///{tmp_path / 'flowbot.db'}"
    engine = connect(url, exclusive=True)
    try:
        earlier = subprocess.run([sys.executable, "-c", REGISTER, url], cwd=ROOT, text=True,
                                 capture_output=True, timeout=60, check=True).stdout.strip()
        now = _registry(engine, "this-life")
        assert earlier in {r.id for r in now.live()}  # its lease has not run out ...
        assert now.take_dead() == [earlier]  # ... but only one process may use the file
    finally:
        engine.dispose()
