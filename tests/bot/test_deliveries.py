import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from bot.intake.deliveries import DeliveryStatus, DeliveryStore, deliveries_table
from tests.bot.delivery_rows import delivery_count, find_delivery
from tests.clock import FakeClock
from tests.fakes import issue_comment_event, pull_request_event, push_event

START = datetime(2026, 1, 1, tzinfo=UTC)


def _store(engine: Engine) -> DeliveryStore:
    return DeliveryStore(engine, FakeClock(START))


def _record(store: DeliveryStore, delivery_id: str) -> bool:
    payload = {"action": "opened", "repository": {"full_name": "o/r"}}
    return store.record(delivery_id, "pull_request", json.dumps(payload).encode(), payload)


def test_redelivered_id_is_recorded_once(db_engine: Engine) -> None:
    store = _store(db_engine)
    assert _record(store, "d1")
    assert not _record(store, "d1")
    assert delivery_count(store) == 1


def test_claim_each_delivery_once_then_finish(db_engine: Engine) -> None:
    store = _store(db_engine)
    for n in range(3):
        _record(store, f"d{n}")
    first = store.claim(2)
    second = store.claim(2)
    assert {d.id for d in first} | {d.id for d in second} == {"d0", "d1", "d2"}
    assert not {d.id for d in first} & {d.id for d in second}
    assert store.claim(1) == []
    store.finish_many([("d0", None)])
    store.finish_many([("d1", "KeyError: boom")])
    assert find_delivery(store, "d0").status is DeliveryStatus.DONE  # type: ignore[union-attr]
    failed = find_delivery(store, "d1")
    assert failed is not None and failed.status is DeliveryStatus.FAILED
    assert failed.error == "KeyError: boom"


def test_unfinished_work_is_requeued_after_a_crash(db_engine: Engine) -> None:
    store = _store(db_engine)
    _record(store, "d1")
    [claimed] = store.claim(1)
    assert store.requeue_claimed_by([]) == 0  # claimed under no replica id: not unless asked
    assert store.requeue_claimed_by([], unclaimed=True) == 1  # as on the next start, alone
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
    assert delivery_count(store) == 3


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
    got = {d: find_delivery(store, d) for d in ("d0", "d1", "d2")}
    assert {d: x.status for d, x in got.items() if x} == {
        "d0": DeliveryStatus.DONE, "d1": DeliveryStatus.FAILED, "d2": DeliveryStatus.DONE}
    assert [x.error for x in got.values() if x] == [None, "KeyError: boom", None]
    assert delivery_count(store, DeliveryStatus.PROCESSING) == 0


# --- order of claiming: priority, then fair turns across repositories --------

def _event(store: DeliveryStore, delivery_id: str, event: str, payload: dict[str, Any]) -> None:
    assert store.record(delivery_id, event, json.dumps(payload).encode(), payload)


def _flood(store: DeliveryStore, count: int, repo: str = "flood/a") -> None:
    items = []
    for n in range(count):
        payload = pull_request_event("opened", n + 1, f"{n:040x}", repo=repo)
        items.append((f"pr-{n}", "pull_request", json.dumps(payload).encode(), payload))
    for start in range(0, count, 256):  # as intake writes them: group commits
        assert all(store.record_many(items[start:start + 256]))


def _claimed_until(store: DeliveryStore, wanted: str, batch: int = 8) -> int:
    """How many deliveries were claimed before ``wanted`` (claiming in batches)."""
    before = 0
    while True:
        claimed = [d.id for d in store.claim(batch)]
        assert claimed, f"{wanted} was never claimed"
        if wanted in claimed:
            return before + claimed.index(wanted)
        before += len(claimed)
        store.finish_many([(d, None) for d in claimed])


def test_a_command_recorded_after_500_pr_deliveries_is_claimed_first(db_engine: Engine) -> None:
    store = _store(db_engine)
    _flood(store, 500)
    _event(store, "cmd", "issue_comment", issue_comment_event("/run hello", repo="flood/a"))
    assert _claimed_until(store, "cmd") == 0


def test_a_push_goes_before_pr_validation_of_any_repository(db_engine: Engine) -> None:
    store = _store(db_engine)
    _flood(store, 100)
    _event(store, "push-b", "push", push_event("b" * 40, repo="quiet/b"))
    [first] = store.claim(1)
    assert first.id == "push-b"


def test_a_flooding_repository_takes_turns_with_another(db_engine: Engine) -> None:
    store = _store(db_engine)
    _flood(store, 300)
    for _ in range(5):  # the flood is being worked on
        store.finish_many([(d.id, None) for d in store.claim(8)])
    payload = pull_request_event("opened", 1, "c" * 40, repo="quiet/b")
    _event(store, "pr-b", "pull_request", payload)
    assert _claimed_until(store, "pr-b") <= 2  # not behind the 260 still queued


def test_a_comment_flood_does_not_starve_another_repositorys_push(db_engine: Engine) -> None:
    """Commands go first within a turn, but a flood of them is one repository's lane."""
    store = _store(db_engine)
    items = []
    for n in range(300):
        payload = issue_comment_event("/help", login="stranger", repo="flood/a", comment_id=n)
        items.append((f"c-{n}", "issue_comment", json.dumps(payload).encode(), payload))
    store.record_many(items)
    _event(store, "push-b", "push", push_event("b" * 40, repo="quiet/b"))
    assert _claimed_until(store, "push-b") <= 1


def test_turns_interleave_two_floods(db_engine: Engine) -> None:
    store = _store(db_engine)
    _flood(store, 40, "flood/a")
    items = []
    for n in range(40):
        payload = pull_request_event("opened", n + 1, f"{n:040x}", repo="flood/b")
        items.append((f"b-{n}", "pull_request", json.dumps(payload).encode(), payload))
    store.record_many(items)
    repos = [d.repo for d in store.claim(20)]
    # a's first turn was being served when b's flood came: then one each, turn by turn
    assert repos.count("flood/a") in (10, 11) and repos.count("flood/b") in (9, 10)
    assert "flood/b" in repos[:3]


def test_claiming_walks_an_index(sqlite_engine: Engine) -> None:
    """The claim query reads the claim index in order: no sort of every pending row.
    (Checked on SQLite; PostgreSQL's planner chooses by table statistics.)"""
    store = _store(sqlite_engine)
    _flood(store, 50)
    t = deliveries_table
    query = (select(t.c.id).where(t.c.status == "pending", t.c.next_attempt_at <= START)
             .order_by(t.c.turn, t.c.priority, t.c.received_at).limit(8))
    with sqlite_engine.connect() as conn:
        compiled = str(query.compile(sqlite_engine, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}"))
    assert "ix_webhook_deliveries_claim" in plan and "TEMP B-TREE" not in plan


# --- retries and redeliveries ------------------------------------------------

def test_a_retried_delivery_waits_for_its_time_and_keeps_its_turn(db_engine: Engine) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = DeliveryStore(db_engine, clock)
    _record(store, "d1")
    _record(store, "d2")
    [first] = store.claim(1)
    store.retry_later(first.id, "GitHubError: HTTP 502", 10)
    assert [d.id for d in store.claim(5)] == ["d2"]  # d1 is not due yet
    assert store.claim(5) == []
    clock.advance(10)
    [again] = store.claim(5)
    assert again.id == "d1" and again.attempts == 2 and again.error == "GitHubError: HTTP 502"


def test_a_redelivery_of_a_failed_delivery_queues_it_again(db_engine: Engine) -> None:
    store = _store(db_engine)
    _record(store, "d1")
    store.claim(1)
    store.finish_many([("d1", "GitHubError: no answer")])
    assert _record(store, "d1")  # GitHub's "Redeliver": queued again
    again = find_delivery(store, "d1")
    assert again is not None and again.status is DeliveryStatus.PENDING and again.attempts == 0
    assert [d.id for d in store.claim(1)] == ["d1"]
    store.finish_many([("d1", None)])
    assert not _record(store, "d1")  # done: a redelivery is a duplicate
    assert delivery_count(store) == 1


def test_a_redelivery_during_backoff_makes_it_due_now(db_engine: Engine) -> None:
    store = _store(db_engine)
    _record(store, "d1")
    store.claim(1)
    store.retry_later("d1", "GitHubError: HTTP 500", 600)
    assert store.claim(1) == []
    assert not _record(store, "d1")  # still queued: a duplicate, but tried at once
    assert [d.id for d in store.claim(1)] == ["d1"]


# --- superseded pull request heads ------------------------------------------

def _pull(store: DeliveryStore, delivery_id: str, sha: str, *, number: int = 7,
          action: str = "synchronize", updated_at: str | None = None) -> None:
    """A pull_request delivery arriving a second after the previous one."""
    payload = pull_request_event(action, number, sha)
    if updated_at is not None:
        payload["pull_request"]["updated_at"] = updated_at
    store._clock.advance(1)  # type: ignore[attr-defined]
    _event(store, delivery_id, "pull_request", payload)


def test_deliveries_of_one_moment_supersede_nothing(db_engine: Engine) -> None:
    """Same update time, same arrival (one group commit): both are validated."""
    store = _store(db_engine)
    items = [(d, "pull_request", json.dumps(p).encode(), p) for d, p in (
        ("x", pull_request_event("synchronize", 7, "a" * 40)),
        ("y", pull_request_event("synchronize", 7, "b" * 40)))]
    store.record_many(items)
    assert store.superseded_by("x") is None and store.superseded_by("y") is None


def test_a_newer_head_of_the_same_pull_request_supersedes(db_engine: Engine) -> None:
    store = _store(db_engine)
    _pull(store, "old", "a" * 40, action="opened")
    _pull(store, "other-pr", "c" * 40, number=8)
    assert store.superseded_by("old") is None
    _pull(store, "new", "b" * 40)
    assert store.superseded_by("old") == "new"
    assert store.superseded_by("new") is None
    assert store.superseded_by("other-pr") is None
    assert store.superseded_by("unknown") is None


def test_a_late_arrival_of_an_older_head_supersedes_nothing(db_engine: Engine) -> None:
    store = _store(db_engine)
    _pull(store, "newer", "b" * 40, updated_at="2026-01-01T10:05:00Z")
    _pull(store, "older", "a" * 40, updated_at="2026-01-01T10:00:00Z")  # arrived late
    assert store.superseded_by("newer") is None
    assert store.superseded_by("older") == "newer"


def test_a_failed_newer_delivery_supersedes_nothing(db_engine: Engine) -> None:
    store = _store(db_engine)
    _pull(store, "old", "a" * 40)
    _pull(store, "new", "b" * 40)
    _event(store, "edit", "pull_request", pull_request_event("edited", 7, "b" * 40))
    claimed = {d.id for d in store.claim(3)}
    assert claimed == {"old", "new", "edit"}
    store.finish_many([("new", "GitHubError: HTTP 404")])
    assert store.superseded_by("old") is None  # the newest head got nothing: validate this


def test_deliveries_queued_before_the_upgrade_stay_claimable(tmp_path: Path) -> None:
    """A database of the previous revision, with work queued: after migrating,
    that work is due at once and a queued comment still goes first."""
    from alembic import command
    from alembic.config import Config

    from runner.state.db import _MIGRATIONS, migrate, open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "bot_0002")
        for n, event in enumerate(("pull_request", "push", "issue_comment")):
            conn.execute(text(
                "INSERT INTO webhook_deliveries (id, event, payload, status, attempts, "
                "received_at) VALUES (:id, :event, '{}', 'pending', 0, :at)"),
                {"id": f"old-{n}", "event": event, "at": f"2025-12-31 23:59:0{n}.000000"})
    migrate(engine)
    store = DeliveryStore(engine, FakeClock(START))
    assert [d.id for d in store.claim(3)] == ["old-2", "old-1", "old-0"]
    engine.dispose()


def test_odd_payload_fields_do_not_fail_the_batch(db_engine: Engine) -> None:
    store = _store(db_engine)
    odd = {"action": "x" * 500, "repository": {"full_name": {"not": "a string"}},
           "pull_request": {"number": 2**40, "head": {"sha": ["a"]}}}
    good = pull_request_event("opened", 1, "a" * 40)
    items = [(d, "pull_request", json.dumps(p).encode(), p) for d, p in (("odd", odd),
                                                                         ("good", good))]
    assert store.record_many(items) == [True, True]
    assert {d.id for d in store.claim(2)} == {"odd", "good"}
    assert store.superseded_by("odd") is None


def test_concurrent_claims_never_share_a_delivery(db_engine: Engine) -> None:
    store = _store(db_engine)
    _flood(store, 120)
    taken: list[list[str]] = [[], [], []]

    def worker(mine: list[str]) -> None:
        while claimed := store.claim(8):
            mine.extend(d.id for d in claimed)

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [d for mine in taken for d in mine]
    assert len(every) == len(set(every)) == 120
