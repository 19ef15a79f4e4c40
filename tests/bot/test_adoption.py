"""A dead replica's work is adopted once by one live replica: the deliveries it
had claimed are processed once by another, the fires it recorded but never
started (a real process killed in its sink) are started once, its runs are handed
to one run service; a live replica's claims are never touched."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.adoption import Adoption
from bot.intake.deliveries import DeliveryStatus, DeliveryStore, deliveries_table
from bot.intake.router import Event
from bot.intake.worker import Workers
from runner.scheduling.fires import FireState
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from runner.state.replicas import ReplicaRegistry
from tests.clock import FakeClock
from tests.polling import wait_until
from tests.runner.scheduling_support import T0, RecordingSink, fire_rows, make_flow

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT, LEASE = 0.1, 0.8
START = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingRuns:
    """Stands in for the run service (its adoption is tested with it): which dead
    replicas' runs each replica was told to adopt."""

    def __init__(self) -> None:
        self.adopted: list[list[str]] = []

    def adopt(self, dead_replicas: Sequence[str]) -> list[str]:
        self.adopted.append(list(dead_replicas))
        return []


def _registry(engine: Engine, name: str) -> ReplicaRegistry:
    registry = ReplicaRegistry(engine, heartbeat_seconds=HEARTBEAT, lease_seconds=LEASE,
                               replica_id=name)
    registry.register()
    return registry


class Replica:
    """One live replica's adoption, delivery workers and scheduler, in this process."""

    def __init__(self, engine: Engine, name: str, clock: FakeClock,
                 handled: Counter[str] | None = None) -> None:
        self.registry = ReplicaRegistry(engine, heartbeat_seconds=HEARTBEAT,
                                        lease_seconds=LEASE, replica_id=name)
        self.deliveries = DeliveryStore(engine, clock, replica=name)
        self.sink = RecordingSink()
        self.scheduler = Scheduler(SqlScheduleStore(engine, clock, instance_id=name),
                                   self.sink, clock)
        self.runs = RecordingRuns()
        self.handled = handled if handled is not None else Counter()
        self.lock = threading.Lock()
        self.workers = Workers(self.deliveries, self._handle, count=2)
        self.adoption = Adoption(self.registry, self.deliveries, self.scheduler, self.runs,
                                 self.workers.notify)

    def _handle(self, event: Event) -> None:
        with self.lock:
            self.handled[event.delivery_id] += 1

    @contextmanager
    def running(self) -> Iterator[Replica]:
        stop = threading.Event()
        self.adoption.first_pass()
        self.adoption.adopt_runs()
        self.workers.start()
        thread = threading.Thread(target=self.adoption.run_forever,
                                  args=(stop, lambda: True), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(10)
            self.workers.stop()
            self.adoption.stop()


def _runs_adoptions(first: Replica, second: Replica, dead: str) -> int:
    """How often the run services of the two replicas were told to adopt ``dead``."""
    return sum(ids.count(dead) for ids in first.runs.adopted + second.runs.adopted)


def _status(engine: Engine, delivery_id: str) -> tuple[str, str | None]:
    t = deliveries_table.c
    with engine.connect() as conn:
        row = conn.execute(select(t.status, t.claimed_by).where(t.id == delivery_id)).one()
    return row.status, row.claimed_by


def test_deliveries_a_dead_replica_claimed_are_processed_once_by_another(
    db_engine: Engine,
) -> None:
    clock = FakeClock(START)
    _registry(db_engine, "dead")  # registers, then never beats again
    dead = DeliveryStore(db_engine, clock, replica="dead")
    for number in range(6):
        payload = {"n": number}
        dead.record(f"d{number}", "push", json.dumps(payload).encode(), payload)
    claimed_by_dead = {d.id for d in dead.claim(3)}
    busy_registry = _registry(db_engine, "busy")  # alive, busy with one of its own
    [busy] = DeliveryStore(db_engine, clock, replica="busy").claim(1)
    handled: Counter[str] = Counter()
    first, second = (Replica(db_engine, name, clock, handled=handled)
                     for name in ("live-1", "live-2"))
    stop = threading.Event()

    def keep_busy_alive() -> None:
        while not stop.wait(HEARTBEAT):
            busy_registry.beat()

    beating = threading.Thread(target=keep_busy_alive, daemon=True)
    beating.start()
    try:
        with first.running(), second.running():
            expected = {f"d{n}" for n in range(6)} - {busy.id}
            wait_until(lambda: set(handled) == expected, 30,
                       "every delivery but the busy replica's to be handled")
            stop.wait(3 * LEASE)  # time for a second adoption, which must not happen
            assert _status(db_engine, busy.id) == (DeliveryStatus.PROCESSING.value, "busy")
    finally:
        stop.set()
        beating.join(5)
    assert claimed_by_dead <= expected and set(handled.values()) == {1}
    assert _runs_adoptions(first, second, "dead") == 1


# The doomed replica: records its due slot, then dies the hard way in its sink.
CHILD = """
import os, sys
from datetime import datetime
from tests.clock import FakeClock
from runner.state.db import connect
from runner.state.replicas import ReplicaRegistry
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore

url, now = sys.argv[1:3]
engine = connect(url)
registry = ReplicaRegistry(engine, heartbeat_seconds=0.1, lease_seconds=0.8)
registry.register()

class DyingSink:
    def fire(self, fire):
        os._exit(17)

clock = FakeClock(datetime.fromisoformat(now))
store = SqlScheduleStore(engine, clock, instance_id=registry.id)
Scheduler(store, DyingSink(), clock).tick(clock.now())
"""


def test_fires_a_killed_replica_recorded_are_started_once_by_another(
    db_engine: Engine,
) -> None:
    clock = FakeClock(T0)
    Registry(db_engine, clock).sync("acme/data", "c1", [make_flow("a", {"cron": "0 * * * *"})])
    clock.advance(3600)
    url = db_engine.url.render_as_string(hide_password=False)
    child = subprocess.run([sys.executable, "-c", CHILD, url, clock.now().isoformat()],
                           cwd=ROOT, timeout=120)
    assert child.returncode == 17
    [recorded] = fire_rows(db_engine)
    assert recorded.state == FireState.FIRED  # recorded, never started

    first, second = Replica(db_engine, "live-1", clock), Replica(db_engine, "live-2", clock)
    with first.running(), second.running():
        wait_until(lambda: fire_rows(db_engine)[0].state == FireState.STARTED, 30,
                   "the orphaned fire to start")
        threading.Event().wait(3 * LEASE)  # time for a second start, which must not happen
    assert list((first.sink.calls + second.sink.calls).values()) == [1]
    [final] = fire_rows(db_engine)
    assert final.state == FireState.STARTED and final.instance_id in ("live-1", "live-2")
    assert _runs_adoptions(first, second, recorded.instance_id) == 1
