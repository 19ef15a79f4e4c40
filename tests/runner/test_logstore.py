"""The log stores' one contract, run over :class:`FileLogs` (files under the data
dir) and :class:`DbLogs` (chunks in PostgreSQL): masked appends, the cap with its
note and the dropped bytes, tails and range reads by offset, the latest attempt,
a reader following a writer that is still writing, a later writer of the same log
fencing an earlier one, and on PostgreSQL the file logs of attempts recorded
before logs moved to the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.model.flows import flow_from_data
from runner.running.dblogs import CHUNK_BYTES, DbLogs, UpgradedLogs
from runner.running.logstore import (
    FileLogs,
    LogKey,
    LogResult,
    LogStore,
    collect,
    make_log_store,
)
from runner.state.db import connect
from runner.state.records import Trigger, TriggerType
from runner.state.store import RunStore
from tests.clock import FakeClock
from tests.polling import wait_until

FLOW = flow_from_data({"id": "logs", "tasks": [
    {"id": "build", "image": "busybox", "commands": ["true"]}]}, path="flows/logs.yml")


@pytest.fixture(params=["files", pytest.param("database", marks=pytest.mark.postgres)])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LogStore, RunStore]]:
    """A log store and the run store its attempts are recorded in."""
    if request.param == "files":
        engine = connect(f"sqlite:///{tmp_path / 'flowbot.db'}")
        store: LogStore = FileLogs(tmp_path / "data")
    else:
        engine = connect(request.getfixturevalue("postgres_url"))
        store = make_log_store(engine, tmp_path / "data")
        assert isinstance(store, DbLogs)
    assert type(make_log_store(engine, tmp_path / "data")) is type(store)
    yield store, RunStore(engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.dispose()


def _attempt(runs: RunStore, logs: LogStore, attempt: int = 1, run_id: str | None = None) -> LogKey:
    if run_id is None:
        run_id = runs.create_run(FLOW, repo="o/r", commit=None,
                                 trigger=Trigger(TriggerType.MANUAL, "octocat"), inputs={}).id
    key = LogKey(run_id, "build", attempt)
    runs.start_attempt(run_id, "build", attempt, logs.location(key))
    return key


def _all(logs: LogStore, key: LogKey) -> bytes:
    return b"".join(logs.iterate(key))


def test_chunks_are_appended_masked_and_read_back_whole(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    seen: list[bytes] = []
    chunks = [b"token=s3cr", b"et-value\n", b"x" * (3 * CHUNK_BYTES + 17), b"\nend\n"]
    result = collect(chunks, store, key, ["s3cret-value"], lambda _t, d: seen.append(d))
    expected = b"token=***\n" + b"x" * (3 * CHUNK_BYTES + 17) + b"\nend\n"
    assert result.done and result.error is None and not result.cut
    assert result.stored == len(expected) == store.size(key)
    assert _all(store, key) == expected == b"".join(seen)
    assert b"s3cret" not in _all(store, key)


def test_past_the_cap_the_log_ends_with_the_note_and_counts_what_was_dropped(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    lines = [b"%05d\n" % n for n in range(1000)]  # 6000 bytes
    result = collect(lines, store, key, [], max_bytes=1024)
    kept, note = _all(store, key).split(b"[flowbot: ")
    assert kept == b"".join(lines[:170])  # whole lines only, up to 1024 bytes
    assert note == (b"log cut here at 1 KiB (FLOWBOT_LOG_MAX_BYTES); "
                    b"the rest of this attempt's output was not kept]\n")
    assert result.cut and result.dropped == 6000 - len(kept)
    assert result.stored == store.size(key)


def test_tail_and_range_reads_give_exact_bytes_by_offset(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    data = b"".join(b"line %06d\n" % n for n in range(30000))  # 360 000 bytes, many chunks
    collect([data[i:i + 5000] for i in range(0, len(data), 5000)], store, key, [])
    assert store.size(key) == len(data)
    for start, end in ((0, 10), (65530, 65550), (CHUNK_BYTES, 2 * CHUNK_BYTES + 3),
                       (len(data) - 7, len(data) + 100), (5, 5), (len(data), len(data) + 9)):
        assert store.read(key, start, end) == data[start:end], (start, end)
    tail, start = store.tail(key, 1000)
    assert start + len(tail) == len(data) and tail == data[start:]
    assert tail.startswith(b"line ") and len(tail) <= 1000  # from a whole line
    chunk, at, size = store.chunk_before(key, start, 1000)
    assert size == len(data) and chunk == data[at:start] and chunk.startswith(b"line ")
    assert b"".join(store.iterate(key, 100)) == data[:100]


def test_the_latest_attempt_is_the_one_read_and_a_new_one_starts_empty(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    first = _attempt(runs, store)
    collect([b"first try\n"], store, first, [])
    assert store.text_tail(runs, first.run_id, "build", 100) == "first try\n"
    second = _attempt(runs, store, 2, first.run_id)
    collect([b"second try\n"], store, second, [])
    latest = store.latest(runs, first.run_id, "build")
    assert latest is not None and LogKey.of(latest) == second
    assert store.text_tail(runs, first.run_id, "build", 100) == "second try\n"
    assert _all(store, first) == b"first try\n"  # earlier attempts stay readable
    assert store.latest(runs, first.run_id, "other") is None


def test_a_recorded_location_that_is_not_the_stores_own_is_never_read(
        logs: tuple[LogStore, RunStore], tmp_path: Path) -> None:
    store, runs = logs
    run_id = runs.create_run(FLOW, repo="o/r", commit=None,
                             trigger=Trigger(TriggerType.MANUAL, "octocat"), inputs={}).id
    elsewhere = tmp_path / "passwd"
    elsewhere.write_text("root:x:0:0\n")
    runs.start_attempt(run_id, "build", 1, str(elsewhere))
    assert store.latest(runs, run_id, "build") is None
    assert store.text_tail(runs, run_id, "build", 100) is None


def test_rewriting_an_attempt_replaces_its_log(logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    collect([b"x" * 100_000], store, key, [])
    collect([b"again\n"], store, key, [])  # re-attached: the output is read from the start
    assert _all(store, key) == b"again\n"


def test_a_reader_follows_a_writer_that_is_still_writing(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    step, written = threading.Event(), threading.Event()
    lines = [b"%d\n" % n for n in range(1, 2001)]

    def chunks() -> Iterator[bytes]:
        for n, line in enumerate(lines):
            if n == 1000:  # half written: wait until the reader saw it
                written.set()
                assert step.wait(30)
            yield line

    result = LogResult()
    writer = threading.Thread(target=collect, args=(chunks(), store, key, []),
                              kwargs={"result": result})
    writer.start()
    try:
        assert written.wait(30)
        half = b"".join(lines[:1000])
        # the task still runs: the first half is readable (on the database within a flush)
        wait_until(lambda: store.size(key) == len(half), 10, "the first half readable")
        assert store.read(key, 0, len(half)) == half
        assert not result.done
    finally:
        step.set()
        writer.join(30)
    assert result.done and _all(store, key) == b"".join(lines)


def test_a_writer_opened_later_for_the_same_log_fences_the_earlier_one(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    stalled = store.open(key)  # the replica thought dead
    stalled.write(b"old 1\n" * 20_000)  # past a chunk: on the database, a flush is due
    adopter = store.open(key)  # its adopter re-attaches and reads the output again
    adopter.write(b"new 1\n")
    stalled.write(b"old 2\n" * 20_000)
    adopter.write(b"new 2\n")
    stalled.write(b"old 3\n")
    stalled.close()
    adopter.close()
    assert _all(store, key) == b"new 1\nnew 2\n"
    assert store.size(key) == len(b"new 1\nnew 2\n")


def test_the_fenced_writer_of_a_database_log_stops_writing_and_its_flush_adds_nothing(
        logs: tuple[LogStore, RunStore]) -> None:
    store, runs = logs
    key = _attempt(runs, store)
    stalled = store.open(key)
    stalled.write(b"a" * 10)
    if isinstance(store, DbLogs):  # its first bytes reach the database first
        wait_until(lambda: store.size(key) == 10, 10, "the stalled writer's first flush")
    else:
        assert store.size(key) == 10
    adopter = store.open(key)
    assert store.size(key) == 0  # the reopened log starts empty
    stalled.write(b"b" * (3 * CHUNK_BYTES))  # a flush at once, fenced
    stalled.close()
    assert store.size(key) == 0
    adopter.write(b"mine\n")
    adopter.close()
    assert _all(store, key) == b"mine\n"


@pytest.mark.postgres
def test_on_postgresql_an_attempt_logged_to_its_file_before_the_upgrade_is_served(
        postgres_url: str, tmp_path: Path) -> None:
    engine = connect(postgres_url)
    try:
        runs = RunStore(engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
        files = FileLogs(tmp_path / "data")  # what this installation used before
        old = _attempt(runs, files)
        data = b"".join(b"old line %06d\n" % n for n in range(20000))  # 300 000 bytes
        collect([data[i:i + 7000] for i in range(0, len(data), 7000)], files, old, [])
        elsewhere = _attempt(runs, files, run_id=runs.create_run(
            FLOW, repo="o/r", commit=None, trigger=Trigger(TriggerType.MANUAL, "octocat"),
            inputs={}).id)
        moved = tmp_path / "outside.log"
        moved.write_bytes(b"root:x:0:0\n")
        runs.start_attempt(elsewhere.run_id, "build", 2, str(moved))

        store = make_log_store(engine, tmp_path / "data")
        assert isinstance(store, UpgradedLogs)
        found = store.latest(runs, old.run_id, "build")
        assert found is not None and LogKey.of(found) == old
        assert store.size(old) == len(data)
        tail, start = store.tail(old, 1000)
        assert tail == data[start:] and tail.startswith(b"old line ")
        assert store.read(old, 65530, 2 * CHUNK_BYTES + 3) == data[65530:2 * CHUNK_BYTES + 3]
        chunk, at, size = store.chunk_before(old, start, 1000)
        assert size == len(data) and chunk == data[at:start]
        assert _all(store, old) == data
        assert store.text_tail(runs, old.run_id, "build", 100) == data[-96:].decode()
        # a recorded path outside the logs folder is still never read
        assert store.latest(runs, elsewhere.run_id, "build") is None

        # a new attempt goes to the database; re-attaching the old one rewrites it there
        new = _attempt(runs, store, 2, old.run_id)
        collect([b"second try\n"], store, new, [])
        assert store.text_tail(runs, old.run_id, "build", 100) == "second try\n"
        assert not (tmp_path / "data" / "logs" / old.run_id / "build.2.log").exists()
        collect([b"again\n"], store, old, [])
        assert _all(store, old) == b"again\n"
    finally:
        engine.dispose()
