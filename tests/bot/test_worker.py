"""Delivery workers: dispatch through a router, record done/failed, survive restarts."""

import json
import threading
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from bot.deliveries import DeliveryStatus, DeliveryStore
from bot.router import Event, Router
from bot.worker import (
    BUSY_SECONDS,
    FLUSH_SECONDS,
    Workers,
    drain,
    process_batch,
    process_one,
)
from runner.cron import FakeClock


def _store(engine: Engine) -> DeliveryStore:
    store = DeliveryStore(engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    for number, event in enumerate(["push", "boom", "ping"]):
        payload = {"n": number}
        store.record(f"d{number}", event, json.dumps(payload).encode(), payload)
    return store


def _router(seen: list[str]) -> Router[None]:
    router: Router[None] = Router()

    @router.register("push")
    def push(event: Event, _: None) -> None:
        seen.append(event.delivery_id)

    @router.register("boom")
    def boom(event: Event, _: None) -> None:
        raise KeyError("head")

    return router


def test_drain_marks_done_and_failed(sqlite_engine: Engine) -> None:
    store = _store(sqlite_engine)
    seen: list[str] = []
    router = _router(seen)
    assert drain(store, lambda e: router.dispatch(e, None)) == 3
    assert seen == ["d0"]
    statuses = {d: store.get(d).status for d in ("d0", "d1", "d2")}  # type: ignore[union-attr]
    assert statuses == {"d0": DeliveryStatus.DONE, "d1": DeliveryStatus.FAILED,
                        "d2": DeliveryStatus.DONE}
    assert store.get("d1").error == "KeyError: 'head'"  # type: ignore[union-attr]
    assert not process_one(store, lambda e: router.dispatch(e, None))


def test_threads_take_work_left_by_a_crash(sqlite_engine: Engine) -> None:
    store = _store(sqlite_engine)
    seen: list[str] = []
    store.claim(3)  # a previous process took them all and died
    done = threading.Event()
    router = _router(seen)

    def dispatch(event: Event) -> None:
        router.dispatch(event, None)
        if store.count(DeliveryStatus.PENDING) == 0:
            done.set()

    workers = Workers(store, dispatch, count=2)
    workers.start()
    try:
        assert done.wait(30)
    finally:
        workers.stop()
    assert seen == ["d0"]
    assert store.count(DeliveryStatus.PROCESSING) == 0


class _Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quick_outcomes_are_written_together(sqlite_engine: Engine) -> None:
    store, ticks = _store(sqlite_engine), _Ticks()
    seen: list[tuple[str, DeliveryStatus]] = []

    def dispatch(event: Event) -> None:  # what the store says of d0 while each runs
        seen.append((event.delivery_id, store.get("d0").status))  # type: ignore[union-attr]

    assert process_batch(store, dispatch, 3, monotonic=ticks) == 3
    assert [status for _, status in seen] == [DeliveryStatus.PROCESSING] * 3
    assert store.count(DeliveryStatus.DONE) == 3


def test_an_outcome_waits_at_most_the_flush_time(sqlite_engine: Engine) -> None:
    store, ticks = _store(sqlite_engine), _Ticks()
    seen: list[DeliveryStatus] = []

    def slow(event: Event) -> None:
        seen.append(store.get("d0").status)  # type: ignore[union-attr]
        ticks.now += FLUSH_SECONDS + 1  # this handler took longer than the flush time

    assert process_batch(store, slow, 3, monotonic=ticks) == 3
    assert seen == [DeliveryStatus.PROCESSING, DeliveryStatus.DONE, DeliveryStatus.DONE]
    assert store.count(DeliveryStatus.DONE) == 3


def test_workers_make_progress_while_intake_is_busy(sqlite_engine: Engine) -> None:
    store, ticks = _store(sqlite_engine), _Ticks()
    seen: list[str] = []
    router = _router(seen)
    workers = Workers(store, lambda e: router.dispatch(e, None), count=1, monotonic=ticks)
    assert not workers.intake_busy()
    workers.notify()  # a delivery just arrived, and the clock stands still: busy throughout
    assert workers.intake_busy()
    workers.start()
    try:
        for _ in range(300):
            if store.count(DeliveryStatus.PENDING) == 0 and store.count(
                    DeliveryStatus.PROCESSING) == 0:
                break
            threading.Event().wait(0.05)
    finally:
        workers.stop()
    assert seen == ["d0"] and store.count(DeliveryStatus.DONE) == 2
    ticks.now += BUSY_SECONDS + 1  # no delivery for a while
    assert not workers.intake_busy()
