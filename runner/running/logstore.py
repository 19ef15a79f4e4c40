"""Attempt logs behind one interface, :class:`LogStore`, written through a
:class:`StreamMasker` so no secret ever reaches the store or a live viewer.

Two stores: :class:`FileLogs` (the embedded SQLite default) keeps each log in a
file ``<data_dir>/logs/<run>/<task>.<attempt>.log``; :class:`~runner.running.dblogs.DbLogs`
(PostgreSQL, so every replica reads every log) keeps it in the database, in
chunks appended as the task writes. :func:`make_log_store` picks by database;
on PostgreSQL it is a :class:`~runner.running.dblogs.DbLogs` that also serves the
attempts recorded before logs moved to the database from their files
(:class:`~runner.running.dblogs.UpgradedLogs`).

One writer per log: a stalled replica that comes back (it was adopted) may still
be writing an attempt's log when its adopter reopens the same key. The writer
opened last wins and an earlier one's further writes go nowhere: a file log is
opened as a new file renamed over the log's path (the earlier writer keeps
writing to the file it holds, no longer the log's), a database log takes the
log's fence row (see :mod:`runner.running.dblogs`).

A log keeps at most ``max_bytes`` (``FLOWBOT_LOG_MAX_BYTES``) per attempt: past
that it ends with :data:`CUT_NOTE` and the rest of the task's output is not
kept (but still read, so the task never waits). A write that fails (a full
disk, a database that went away) ends the log where it is; the
:class:`LogResult` says what happened, for the attempt's record.

Reading back: :meth:`LogStore.latest` finds a task's latest attempt with a log
(only one the store itself recorded: a file path recorded outside the logs
folder is never read), then :meth:`~LogStore.tail`, :meth:`~LogStore.chunk_before`,
:meth:`~LogStore.read` and :meth:`~LogStore.iterate` read it by byte offsets,
never more than asked, whatever its size.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from runner.running.masking import Masker, StreamMasker
from runner.state.records import AttemptRow
from runner.state.store import RunStore

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# Live viewers get (task id, masked bytes) as they are written.
LogSink = Callable[[str, bytes], None]

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
READ_STEP = 64 * 1024  # bytes per read of :meth:`LogStore.iterate`
CUT_NOTE = ("[flowbot: log cut here at {size} (FLOWBOT_LOG_MAX_BYTES); "
            "the rest of this attempt's output was not kept]\n")
CUT = "log cut at {size} (FLOWBOT_LOG_MAX_BYTES); {dropped} more bytes of output not kept"
UNWRITABLE = "log incomplete: cannot write {path}: {problem}"
_LINE_SEARCH = 4096  # a tail or chunk starts at the first line start this near


@dataclass(frozen=True)
class LogKey:
    """Which log: one attempt of one task of one run."""

    run_id: str
    task_id: str
    attempt: int

    @classmethod
    def of(cls, row: AttemptRow) -> LogKey:
        return cls(row.run_id, row.task_id, row.attempt)


class LogUnwritable(Exception):
    """A log write failed; the message says why (no path, no SQL)."""


class LogWriter(Protocol):
    """One attempt's log being written (by one thread)."""

    where: str  # what a failure names: the file, or the attempt's log in the database

    def write(self, data: bytes) -> None:
        """Append ``data`` (masked already); raises :class:`LogUnwritable`."""

    def close(self) -> None:
        """Make everything written readable; raises :class:`LogUnwritable`."""


@dataclass
class LogResult:
    """What :func:`collect` managed; read by the attempt once the task has ended."""

    stored: int = 0  # bytes written to the log
    cut: bool = False  # the cap was reached
    dropped: int = 0  # bytes of output read past the cap (or a write failure), not kept
    error: str | None = None  # a write failed: the log ends early
    done: bool = False  # the stream was read to its end
    at_line_start: bool = True  # the log so far ends with a whole line


class LogStore(ABC):
    """Where attempt logs are written and read back; safe to share between threads."""

    # --- writing ------------------------------------------------------------
    @abstractmethod
    def location(self, key: LogKey) -> str:
        """What the attempt records as its log (``task_attempts.log_path``)."""

    @abstractmethod
    def open(self, key: LogKey) -> LogWriter:
        """A new, empty log for ``key``, replacing one written before (a re-attached
        attempt reads its output again from the start); raises :class:`LogUnwritable`."""

    # --- reading ------------------------------------------------------------
    @abstractmethod
    def size(self, key: LogKey) -> int:
        """Bytes readable now (0 when nothing was written yet, or the log is gone)."""

    @abstractmethod
    def read(self, key: LogKey, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` that exist (fewer at the log's end); reads no more."""

    def available(self, key: LogKey) -> bool:
        """Whether the log can be read at all (a file removed by hand cannot)."""
        return True

    def owns(self, row: AttemptRow) -> bool:
        """Whether ``row`` records this store's log of its attempt (and nothing else)."""
        return row.log_path == self.location(LogKey.of(row))

    def latest_attempts(self, rows: Iterable[AttemptRow]) -> dict[str, AttemptRow]:
        """Each task's latest attempt among ``rows`` whose log this store wrote."""
        latest: dict[str, AttemptRow] = {}
        for row in rows:
            if not row.log_path or not self.owns(row):
                continue  # not started, or recorded elsewhere: never read
            if row.task_id not in latest or latest[row.task_id].attempt < row.attempt:
                latest[row.task_id] = row
        return latest

    def latest(self, store: RunStore, run_id: str, task_id: str) -> AttemptRow | None:
        """The latest attempt of a task, if its log can be read (None: never started,
        its log recorded elsewhere, or removed)."""
        rows = [a for a in store.attempts(run_id, task_id) if a.log_path]
        if not rows:
            return None  # the task never started
        found = self.latest_attempts(rows[-1:]).get(task_id)
        if found is None:
            log.warning("log recorded outside the log store not served",
                        extra={"run": run_id, "task": task_id})
            return None
        return found if self.available(LogKey.of(found)) else None  # removed by hand

    def tail(self, key: LogKey, limit: int) -> tuple[bytes, int]:
        """The last ``limit`` bytes (from a line start when one is near) and the
        offset they start at; their end is the log's size."""
        data, start, _size = self.chunk_before(key, self.size(key), limit)
        return data, start

    def chunk_before(self, key: LogKey, end: int, limit: int) -> tuple[bytes, int, int]:
        """At most ``limit`` bytes before byte ``end`` (from a line start when one is
        near), where they start, and the log's size; reads no more."""
        size = self.size(key)
        end = min(max(end, 0), size)
        start = max(0, end - limit)
        data = self.read(key, start, end)
        if start > 0:
            newline = data.find(b"\n", 0, _LINE_SEARCH)
            if newline >= 0:
                data, start = data[newline + 1:], start + newline + 1
        return data, start, size

    def iterate(self, key: LogKey, end: int | None = None) -> Iterator[bytes]:
        """The log from its start to ``end`` (its size now if None), a bounded read
        at a time: what the whole-log download streams."""
        end = self.size(key) if end is None else end
        offset = 0
        while offset < end:
            data = self.read(key, offset, min(end, offset + READ_STEP))
            if not data:
                return  # removed meanwhile
            yield data
            offset += len(data)

    def text_tail(self, store: RunStore, run_id: str, task_id: str, limit: int) -> str | None:
        """The end (at most ``limit`` bytes) of the latest attempt's log of a task, as
        text, or None if it has none."""
        found = self.latest(store, run_id, task_id)
        if found is None:
            return None
        data, _start = self.tail(LogKey.of(found), limit)
        return data.decode("utf-8", errors="replace")


def log_path(data_dir: Path, run_id: str, task_id: str, attempt: int) -> Path:
    return data_dir / "logs" / run_id / f"{task_id}.{attempt}.log"


class FileLogs(LogStore):
    """Logs as files under ``<data_dir>/logs``: one process, or replicas sharing the
    data dir's volume."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def path(self, key: LogKey) -> Path:
        return log_path(self.data_dir, key.run_id, key.task_id, key.attempt)

    def location(self, key: LogKey) -> str:
        return str(self.path(key))

    def owns(self, row: AttemptRow) -> bool:
        recorded = Path(row.log_path or "").resolve()
        return recorded == log_path(self.data_dir.resolve(), row.run_id, row.task_id,
                                    row.attempt).resolve()

    def open(self, key: LogKey) -> LogWriter:
        """A new file renamed over the log's path: an earlier writer of ``key`` goes
        on writing to the file it holds, which is no longer the log."""
        path = self.path(key)
        fresh = path.with_name(f".{path.name}.{os.urandom(6).hex()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = fresh.open("xb")
            try:
                os.replace(fresh, path)
            except OSError:
                out.close()
                fresh.unlink(missing_ok=True)
                raise
            return _FileWriter(path, out)
        except OSError as exc:
            raise LogUnwritable(UNWRITABLE.format(path=path, problem=exc.strerror or exc)) \
                from exc

    def available(self, key: LogKey) -> bool:
        return self.path(key).is_file()

    def size(self, key: LogKey) -> int:
        try:
            return self.path(key).stat().st_size
        except OSError:
            return 0  # not written yet, or removed

    def read(self, key: LogKey, start: int, end: int) -> bytes:
        try:
            with self.path(key).open("rb") as f:
                f.seek(max(start, 0))
                return f.read(max(end - start, 0))
        except OSError:
            return b""  # not written yet, or removed


class _FileWriter:
    def __init__(self, path: Path, out: BinaryIO) -> None:
        self.where, self._path, self._out = str(path), path, out

    def write(self, data: bytes) -> None:
        try:
            self._out.write(data)
            self._out.flush()  # readable at once by the live tail
        except OSError as exc:
            self._abandon()
            raise self._failed(exc) from exc

    def close(self) -> None:
        try:
            self._out.close()
        except OSError as exc:  # the last buffered bytes could not be written
            raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> LogUnwritable:
        return LogUnwritable(UNWRITABLE.format(path=self._path, problem=exc.strerror or exc))

    def _abandon(self) -> None:
        try:
            self._out.close()
        except OSError:
            pass  # already reported; the bytes it held are lost with the rest


def make_log_store(engine: Engine, data_dir: Path) -> LogStore:
    """On PostgreSQL :class:`~runner.running.dblogs.DbLogs` (every replica reads
    every log), serving the attempts logged to files before from their files
    (:class:`~runner.running.dblogs.UpgradedLogs`);
    else :class:`FileLogs` under ``data_dir``."""
    if engine.dialect.name == "postgresql":
        from runner.running.dblogs import UpgradedLogs

        return UpgradedLogs(engine, FileLogs(data_dir))
    return FileLogs(data_dir)


def size_text(size: int) -> str:
    """``16 MiB``, ``512 KiB`` or ``100 bytes``: how the cap is named to people."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def collect(
    chunks: Iterable[bytes], logs: LogStore, key: LogKey, secrets: Iterable[str],
    sink: LogSink | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
    result: LogResult | None = None,
) -> LogResult:
    """Write every chunk, masked, to the log of ``key`` (replacing it) and to
    ``sink``, up to ``max_bytes``; ``result`` (returned) is filled in as it goes.
    The stream is read to its end even past the cap, so the task never waits on
    its output."""
    result = result if result is not None else LogResult()
    masker = StreamMasker(Masker(list(secrets)))
    out: LogWriter | None = None
    try:
        out = _open(logs, key, result)
        for chunk in chunks:
            if out is None or result.cut:
                result.dropped += len(chunk)
                continue  # past the cap, or the log cannot be written
            out = _emit(out, masker.feed(chunk), key.task_id, sink, max_bytes, result)
        if out is not None and not result.cut:
            out = _emit(out, masker.flush(), key.task_id, sink, max_bytes, result)
    finally:
        if out is not None:
            try:
                out.close()
            except LogUnwritable as exc:
                _failed(result, out.where, exc)
        result.done = True
    return result


def _open(logs: LogStore, key: LogKey, result: LogResult) -> LogWriter | None:
    try:
        return logs.open(key)
    except LogUnwritable as exc:
        _failed(result, logs.location(key), exc)
        return None


def _failed(result: LogResult, where: str, exc: LogUnwritable) -> None:
    result.error = str(exc)
    log.warning("attempt log not written", extra={"path": where, "reason": result.error})


def _emit(out: LogWriter, data: bytes, task_id: str, sink: LogSink | None,
          max_bytes: int, result: LogResult) -> LogWriter | None:
    """Write ``data`` within the cap; the writer, or None once a write failed."""
    if not data:
        return out  # the masker is holding bytes back until it can tell
    room = max_bytes - result.stored
    if len(data) > room:
        data = _cut(data, room, max_bytes, result)
    try:
        out.write(data)
    except LogUnwritable as exc:
        _failed(result, out.where, exc)
        result.dropped += len(data)
        return None
    result.stored += len(data)
    result.at_line_start = data.endswith(b"\n")
    if sink is not None:
        sink(task_id, data)
    return out


def _cut(data: bytes, room: int, max_bytes: int, result: LogResult) -> bytes:
    """What fits of ``data`` (whole lines when there are any) and the note."""
    keep = data.rfind(b"\n", 0, max(room, 0)) + 1
    if keep == 0 and not (result.at_line_start and result.stored):
        keep = max(room, 0)  # a line longer than the cap: cut inside it
    kept = data[:keep]
    result.cut = True
    result.dropped += len(data) - keep
    line_open = kept[-1:] != b"\n" if kept else not result.at_line_start
    note = CUT_NOTE.format(size=size_text(max_bytes)).encode()
    return kept + (b"\n" if line_open else b"") + note
