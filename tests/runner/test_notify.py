"""Wake-ups across replicas over PostgreSQL LISTEN/NOTIFY: two notifiers (their own
listening connections) on one database, a listener whose server process is
terminated, and two run services ("replicas") whose polls are set so long that
only a notification can explain a run starting or a cancel being acted on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from enginekit import MANUAL, task
from sqlalchemy.engine import Engine

from runner.backends.process_backend import ProcessBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.service import RunService
from runner.state.notify import RUNS, Notifier, SharedWake, notify_in
from runner.state.records import RunRecord, Status
from runner.state.store import RunStore
from tests.polling import wait_until

NEVER = 60.0  # seconds: a poll this long never fires within a test's wait
WAIT = 15.0


class Heard:
    """The payloads a callback was called with."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, payload: str) -> None:
        with self._lock:
            self.payloads.append(payload)

    def got(self, payload: str) -> bool:
        with self._lock:
            return payload in self.payloads


@pytest.fixture
def notifiers(db_engine: Engine) -> Iterator[list[Notifier]]:
    made: list[Notifier] = []
    yield made
    for notifier in made:
        notifier.stop()


def _listening(notifiers: list[Notifier], engine: Engine) -> Notifier:
    notifier = Notifier(engine, backoff_first=0.05, backoff_max=0.5)
    notifiers.append(notifier)
    return notifier


def _started(notifier: Notifier) -> Notifier:
    notifier.start()
    wait_until(lambda: notifier.backend_pid, WAIT, "the listener to connect")
    return notifier


def _hearing(notifiers: list[Notifier], engine: Engine) -> tuple[Notifier, Heard]:
    """A started listener, and what it heard on the test channel."""
    notifier, heard = _listening(notifiers, engine), Heard()
    notifier.on("flowbot_test", heard)
    return _started(notifier), heard


def on_postgres(test: Callable[..., None]) -> Callable[..., None]:
    marked: Callable[..., None] = pytest.mark.postgres(
        pytest.mark.parametrize("db_engine", ["postgres"], indirect=True)(test))
    return marked


@on_postgres
def test_a_notification_from_one_replica_reaches_the_others_callback(
    db_engine: Engine, notifiers: list[Notifier]
) -> None:
    a, heard = _hearing(notifiers, db_engine)
    b = _listening(notifiers, db_engine)  # the sender: not even listening
    b.notify("flowbot_test", "run-1")
    wait_until(lambda: heard.got("run-1"), WAIT, "A to hear B's notification")
    with db_engine.connect() as conn:  # a rolled-back transaction notifies no one
        notify_in(conn, "flowbot_test", "rolled-back")
        conn.rollback()
    with db_engine.begin() as conn:
        notify_in(conn, "flowbot_test", "committed")
    wait_until(lambda: heard.got("committed"), WAIT, "the committed notification")
    assert not heard.got("rolled-back")


@on_postgres
def test_the_listener_survives_its_connection_being_killed(
    db_engine: Engine, notifiers: list[Notifier]
) -> None:
    a, heard = _hearing(notifiers, db_engine)
    first = a.backend_pid
    with db_engine.begin() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    wait_until(lambda: a.backend_pid not in (None, first), WAIT,
               "the listener to connect again")
    assert a.connections == 2
    assert heard.got("")  # told to look once: notifications meanwhile were lost
    _listening(notifiers, db_engine).notify("flowbot_test", "after")
    wait_until(lambda: heard.got("after"), WAIT, "a notification after the reconnect")


@on_postgres
def test_a_shared_wake_set_in_one_replica_is_set_in_the_other(
    db_engine: Engine, notifiers: list[Notifier]
) -> None:
    a, b = _listening(notifiers, db_engine), _listening(notifiers, db_engine)
    wake_a, wake_b = SharedWake(a, "flowbot_test"), SharedWake(b, "flowbot_test")
    _started(a)
    _started(b)
    wake_a.clear()
    wake_b.clear()  # the connect's "look once"
    wake_b.set()
    wait_until(wake_a.is_set, WAIT, "B's wake-up to wake A")


@pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True)
def test_on_sqlite_nothing_is_sent_or_heard(db_engine: Engine) -> None:
    notifier = Notifier(db_engine)
    heard = Heard()
    notifier.on(RUNS, heard)
    notifier.start()
    notifier.notify(RUNS, "x")  # one process: its own wake-ups did the work
    notifier.stop()
    assert notifier.backend_pid is None and not notifier.connections and not heard.payloads


# --- two run services ------------------------------------------------------
class LookingStore(RunStore):
    """A run store that counts the looks for queued runs that found none (a worker
    about to wait for a wake-up)."""

    idle_looks = 0

    def runs_with_status(self, *statuses: Status) -> list[RunRecord]:
        found = super().runs_with_status(*statuses)
        if statuses == (Status.QUEUED,) and not found:
            self.idle_looks += 1
        return found


def _replica(engine: Engine, data_dir: Path, name: str, notifier: Notifier) -> RunService:
    return RunService(LookingStore(engine, SystemClock()), ProcessBackend(owner="notify-test"),
                      data_dir, {}, SystemClock(), owner="notify-test", replica=name,
                      notifier=notifier, poll=NEVER, cancel_poll=NEVER)


def _submit(service: RunService, source: Path, data: dict[str, Any]) -> str:
    flow = flow_from_data(data, path=f"flows/{data['id']}.yml")
    return service.submit(flow, {}, repo="o/r", commit=None, source=source,
                          trigger=MANUAL).run_id


@pytest.fixture
def pair(tmp_path: Path, db_engine: Engine,
         notifiers: list[Notifier]) -> Iterator[tuple[RunService, RunService, RunStore]]:
    source = tmp_path / "repo"
    source.mkdir()
    (source / "data.csv").write_text("a,b\n")
    a_notes, b_notes = _listening(notifiers, db_engine), _listening(notifiers, db_engine)
    a = _replica(db_engine, tmp_path / "data", "replica-a", a_notes)
    b = _replica(db_engine, tmp_path / "data", "replica-b", b_notes)
    _started(a_notes)
    _started(b_notes)
    a.start(workers=1)  # only A executes; B only takes requests
    yield a, b, RunStore(db_engine, SystemClock())
    a.stop(cancel_running=True)


def _status(store: RunStore, run_id: str) -> Status:
    run = store.get_run(run_id)
    assert run is not None
    return run.status


@on_postgres
def test_a_run_queued_through_b_starts_on_a_without_waiting_for_a_poll(
    tmp_path: Path, pair: tuple[RunService, RunService, RunStore]
) -> None:
    a, b, store = pair
    assert a.poll == NEVER  # only a notification can wake A's idle worker in time
    assert isinstance(a.store, LookingStore)
    looks = a.store
    wait_until(lambda: looks.idle_looks, WAIT, "A's worker to find nothing and wait")
    run_id = _submit(b, tmp_path / "repo", {"id": "quick", "tasks": [task("t", "true")]})
    wait_until(lambda: _status(store, run_id) is Status.SUCCESS, WAIT,
               "A to run what B queued")
    run = store.get_run(run_id)
    assert run is not None and run.owner == "replica-a"


@on_postgres
def test_a_cancel_asked_of_b_ends_a_run_a_executes_without_waiting_for_a_poll(
    tmp_path: Path, pair: tuple[RunService, RunService, RunStore]
) -> None:
    a, b, store = pair
    run_id = _submit(b, tmp_path / "repo", {"id": "long", "tasks": [task("t", "sleep 60")]})
    wait_until(lambda: any(t.handle for t in store.attempts(run_id)), WAIT,
               "A to start the task")
    assert b.cancel(run_id)  # B does not execute it: recorded, and A is notified
    wait_until(lambda: _status(store, run_id) is Status.CANCELLED, WAIT,
               "A to cancel the run B was asked to cancel")
