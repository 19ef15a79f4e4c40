"""Delivery workers: dispatch through a router, record done/failed, survive restarts."""

import json
import threading
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from bot.deliveries import DeliveryStatus, DeliveryStore
from bot.router import Event, Router
from bot.worker import Workers, drain, process_one
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
    store, seen = _store(sqlite_engine), []
    router = _router(seen)
    assert drain(store, lambda e: router.dispatch(e, None)) == 3
    assert seen == ["d0"]
    statuses = {d: store.get(d).status for d in ("d0", "d1", "d2")}  # type: ignore[union-attr]
    assert statuses == {"d0": DeliveryStatus.DONE, "d1": DeliveryStatus.FAILED,
                        "d2": DeliveryStatus.DONE}
    assert store.get("d1").error == "KeyError: 'head'"  # type: ignore[union-attr]
    assert not process_one(store, lambda e: router.dispatch(e, None))


def test_threads_take_work_left_by_a_crash(sqlite_engine: Engine) -> None:
    store, seen = _store(sqlite_engine), []
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
