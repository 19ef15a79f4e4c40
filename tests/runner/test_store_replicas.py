"""The run store's replica columns on SQLite and PostgreSQL: the claim stamps the
replica, one adopter takes a dead replica's run, cancel requests reach only the
replica executing the run; and the installation label all replicas share."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from runner.running.service import installation_for
from runner.state.records import Status
from runner.state.store import RunStore
from tests.clock import FakeClock
from tests.runner.test_store import FLOW, MANUAL, START


def _running(store: RunStore, owner: str) -> str:
    run = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={})
    assert store.get_run(run.id).owner is None  # type: ignore[union-attr]  # queued: nobody's
    assert store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED], owner=owner)
    return run.id


def test_one_adopter_takes_a_dead_replicas_run(db_engine: Engine) -> None:
    store = RunStore(db_engine, FakeClock(START))
    run_id = _running(store, "replica-a")
    assert store.get_run(run_id).owner == "replica-a"  # type: ignore[union-attr]
    assert store.take_over(run_id, "replica-a", "replica-b")
    assert not store.take_over(run_id, "replica-a", "replica-c")  # b was first
    assert store.get_run(run_id).owner == "replica-b"  # type: ignore[union-attr]
    store.set_run_status(run_id, Status.SUCCESS)
    assert not store.take_over(run_id, "replica-b", "replica-c")  # ended: nothing to adopt


def test_a_cancel_request_reaches_the_replica_executing_the_run(db_engine: Engine) -> None:
    store = RunStore(db_engine, FakeClock(START))
    run_id, other = _running(store, "replica-a"), _running(store, "replica-b")
    queued = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={})
    assert store.cancel_requests("replica-a") == []
    assert store.request_cancel(run_id) and store.request_cancel(run_id)
    assert not store.request_cancel(queued.id)  # not running: its replica is nobody
    assert store.cancel_requests("replica-a") == [run_id]
    assert store.cancel_requests("replica-b") == []
    assert store.get_run(run_id).cancel_requested_at == START  # type: ignore[union-attr]
    assert store.get_run(other).cancel_requested_at is None  # type: ignore[union-attr]
    store.set_run_status(run_id, Status.CANCELLED)
    assert store.cancel_requests("replica-a") == []  # ended: nothing left to do


def test_every_replica_on_one_database_shares_the_installation_label() -> None:
    one = installation_for("postgresql+psycopg://flowbot:first@db:5432/flowbot")
    assert one == installation_for("postgresql+psycopg://flowbot:rotated@db:5432/flowbot")
    assert one != installation_for("postgresql+psycopg://flowbot:first@db:5432/other")
    assert len(one) == 12 and "first" not in one
    assert installation_for("sqlite:////data/a/flowbot.db") != installation_for(
        "sqlite:////data/b/flowbot.db")
