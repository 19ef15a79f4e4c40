import json
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from bot.deliveries import DeliveryStatus, DeliveryStore
from runner.cron import FakeClock


def _store(engine: Engine) -> DeliveryStore:
    return DeliveryStore(engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))


def _record(store: DeliveryStore, delivery_id: str) -> bool:
    payload = {"action": "opened", "repository": {"full_name": "o/r"}}
    return store.record(delivery_id, "pull_request", json.dumps(payload).encode(), payload)


def test_redelivered_id_is_recorded_once(db_engine: Engine) -> None:
    store = _store(db_engine)
    assert _record(store, "d1")
    assert not _record(store, "d1")
    assert store.count() == 1


def test_claim_each_delivery_once_then_finish(db_engine: Engine) -> None:
    store = _store(db_engine)
    for n in range(3):
        _record(store, f"d{n}")
    first = store.claim(2)
    second = store.claim(2)
    assert {d.id for d in first} | {d.id for d in second} == {"d0", "d1", "d2"}
    assert not {d.id for d in first} & {d.id for d in second}
    assert store.claim(1) == []
    store.finish("d0")
    store.finish("d1", "KeyError: boom")
    assert store.get("d0").status is DeliveryStatus.DONE  # type: ignore[union-attr]
    failed = store.get("d1")
    assert failed is not None and failed.status is DeliveryStatus.FAILED
    assert failed.error == "KeyError: boom"


def test_unfinished_work_is_requeued_after_a_crash(db_engine: Engine) -> None:
    store = _store(db_engine)
    _record(store, "d1")
    [claimed] = store.claim(1)
    assert store.requeue_unfinished() == 1  # as on the next start
    [again] = store.claim(1)
    assert again.id == claimed.id and again.attempts == 2
    assert again.payload["repository"]["full_name"] == "o/r"


def test_record_many_counts_each_id_once(db_engine: Engine) -> None:
    store = _store(db_engine)
    _record(store, "old")
    payload = {"zen": "x"}
    body = json.dumps(payload).encode()
    items = [(i, "ping", body, payload) for i in ("old", "a", "b", "a")]
    assert store.record_many(items) == [False, True, True, False]
    assert store.count() == 3


def test_installation_of_a_repo_from_its_latest_delivery(db_engine: Engine) -> None:
    store = _store(db_engine)
    payload = {"action": "created", "repository": {"full_name": "o/app"},
               "installation": {"id": 77}}
    store.record("i1", "issue_comment", json.dumps(payload).encode(), payload)
    assert store.installation_for("o/app") == 77
    assert store.installation_for("o/r") is None


def test_finish_many_marks_done_and_failed_together(db_engine: Engine) -> None:
    store = _store(db_engine)
    for n in range(3):
        _record(store, f"d{n}")
    assert len(store.claim(3)) == 3
    store.finish_many([("d0", None), ("d1", "KeyError: boom"), ("d2", None)])
    store.finish_many([])  # nothing to write
    got = {d: store.get(d) for d in ("d0", "d1", "d2")}
    assert {d: x.status for d, x in got.items() if x} == {
        "d0": DeliveryStatus.DONE, "d1": DeliveryStatus.FAILED, "d2": DeliveryStatus.DONE}
    assert [x.error for x in got.values() if x] == [None, "KeyError: boom", None]
    assert store.count(DeliveryStatus.PROCESSING) == 0
