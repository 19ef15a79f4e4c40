"""A run started by a request is recorded once per request key, on SQLite and
PostgreSQL, even when two deliveries of the same request race."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from runner.model.flows import flow_from_data
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore
from tests.clock import FakeClock

FLOW = flow_from_data({"id": "hello", "tasks": [
    {"id": "a", "image": "busybox", "commands": ["true"]}]}, path="flows/hello.yml")
MANUAL = Trigger(TriggerType.MANUAL, actor="writer")


def _store(db_engine: Engine) -> RunStore:
    return RunStore(db_engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))


def test_the_same_request_key_returns_the_run_it_started(db_engine: Engine) -> None:
    store = _store(db_engine)
    first, new = store.create_run_once(FLOW, repo="o/r", commit="c", trigger=MANUAL, inputs={},
                                       request_key="delivery-1:1")
    again, again_new = store.create_run_once(FLOW, repo="o/r", commit="c", trigger=MANUAL,
                                             inputs={}, request_key="delivery-1:1")
    other = store.create_run(FLOW, repo="o/r", commit="c", trigger=MANUAL, inputs={},
                             request_key="delivery-1:2")
    assert (new, again_new) == (True, False) and again.id == first.id
    assert other.id != first.id
    assert store.run_for_request("delivery-1:1") == first
    assert len(store.list_runs()) == 2


def test_runs_without_a_key_never_clash(db_engine: Engine) -> None:
    store = _store(db_engine)
    for _ in range(3):
        store.create_run(FLOW, repo="o/r", commit="c", trigger=MANUAL, inputs={})
    assert len(store.list_runs()) == 3


def test_racing_replays_of_one_request_record_one_run(db_engine: Engine) -> None:
    store = _store(db_engine)
    barrier = threading.Barrier(4)
    got: list[tuple[str, bool]] = []

    def submit() -> None:
        barrier.wait()
        run, new = store.create_run_once(FLOW, repo="o/r", commit="c", trigger=MANUAL,
                                         inputs={}, status=Status.QUEUED, request_key="d:1")
        got.append((run.id, new))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({run_id for run_id, _ in got}) == 1
    assert [new for _, new in got].count(True) == 1
    assert len(store.list_runs()) == 1
