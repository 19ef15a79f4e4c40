"""Attempt logs in the database (:class:`DbLogs`): what every replica on one
PostgreSQL reads, so a run page or live tail served by any replica shows the log
of a task another replica runs.

Table ``log_chunks`` (migration ``runs_0005``): a log is the chunks of its
``(run_id, task_id, attempt)`` in ``seq`` order, each holding at most
:data:`CHUNK_BYTES` starting at byte ``start_offset``. A read of a byte range
fetches only the chunks that overlap it (index on ``start_offset``). Rows go
with their run (``ON DELETE CASCADE``).

Writing: the task's thread only buffers; each writer's own flusher thread takes
everything pending once :data:`CHUNK_BYTES` wait or :data:`FLUSH_SECONDS` passed
(a live tail lags no more than that), and at close, and appends it in ONE
transaction (one multi-row insert of 64 KiB rows), while the task goes on
buffering. Writers share no lock: each has its own buffer and thread (a writer
more than :data:`MAX_PENDING` behind makes its task's thread wait).

Fencing: a replica thought dead that comes back may still be writing a log its
adopter reopened. Each log has one fence row, ``seq`` = :data:`FENCE_SEQ`, whose
``data`` is the token of the writer that opened it last (readers skip it).
:meth:`DbLogs.open` upserts a new token (taking the row's lock, so no flush of
an earlier writer runs meanwhile) and then deletes the old chunks; every flush
locks the fence row (``SELECT ... FOR UPDATE``) in its transaction and inserts
only if the token is still its own. So a writer opened later for the same key
makes an earlier writer's further writes no-ops, whatever the interleaving. No
new schema: the fence is a row of the same table.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from runner.running.logstore import (
    UNWRITABLE,
    FileLogs,
    LogKey,
    LogStore,
    LogUnwritable,
    LogWriter,
)
from runner.state.db import metadata
from runner.state.records import AttemptRow
from runner.state.run_tables import runs

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024  # most bytes in one row; a flush of more makes several rows
FLUSH_SECONDS = 0.5  # longest a written byte waits before it is readable elsewhere
MAX_PENDING = 16 * CHUNK_BYTES  # bytes a writer buffers before its task's thread waits
ITERATE_ROWS = 16  # chunks per query of a whole-log read (at most 1 MiB)
FENCE_SEQ = -1  # the row holding the token of the log's current writer (not log bytes)
WHERE = "the database log of task {task} attempt {attempt} of run {run}"

log_chunks = sa.Table(
    "log_chunks", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey(runs.c.id, ondelete="CASCADE"),
              primary_key=True),
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("start_offset", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Index("ix_log_chunks_offset", "run_id", "task_id", "attempt", "start_offset"),
)


def _of(key: LogKey) -> sa.ColumnElement[bool]:
    """Every row of ``key``'s log, its fence row included."""
    t = log_chunks.c
    return sa.and_(t.run_id == key.run_id, t.task_id == key.task_id, t.attempt == key.attempt)


def _chunks(key: LogKey) -> sa.ColumnElement[bool]:
    """The rows of ``key``'s log that hold its bytes."""
    return sa.and_(_of(key), log_chunks.c.seq >= 0)


def _cause(exc: BaseException) -> str:
    """The driver's message, without SQL or parameters (they hold log bytes)."""
    return str(getattr(exc, "orig", None) or type(exc).__name__).strip()


class DbLogs(LogStore):
    """Logs as chunks in table ``log_chunks`` of ``engine``'s (PostgreSQL) database."""

    def __init__(self, engine: Engine, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.engine, self.flush_seconds = engine, flush_seconds

    def location(self, key: LogKey) -> str:
        return f"db:log_chunks/{key.run_id}/{key.task_id}.{key.attempt}"

    def open(self, key: LogKey) -> LogWriter:
        """A new writer that fences every earlier one of ``key`` (module docstring)."""
        token = os.urandom(16)
        fence = pg_insert(log_chunks).values(
            run_id=key.run_id, task_id=key.task_id, attempt=key.attempt, seq=FENCE_SEQ,
            start_offset=0, data=token)
        try:
            with self.engine.begin() as conn:
                # the fence first: its row lock waits out an earlier writer's flush
                conn.execute(fence.on_conflict_do_update(
                    index_elements=["run_id", "task_id", "attempt", "seq"],
                    set_={"data": fence.excluded.data}))
                conn.execute(log_chunks.delete().where(_chunks(key)))
        except SQLAlchemyError as exc:
            raise LogUnwritable(UNWRITABLE.format(path=_where(key), problem=_cause(exc))) \
                from exc
        return _DbWriter(self, key, token)

    def holds(self, key: LogKey) -> bool:
        """Whether ``key``'s log was ever opened here (its fence row exists)."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.literal(1)).where(_of(key)).limit(1)).first()
        return found is not None

    def size(self, key: LogKey) -> int:
        t = log_chunks.c
        with self.engine.connect() as conn:
            last = conn.execute(
                sa.select(t.start_offset + sa.func.length(t.data)).where(_chunks(key))
                .order_by(t.start_offset.desc()).limit(1)).scalar()
        return int(last or 0)

    def read(self, key: LogKey, start: int, end: int) -> bytes:
        start = max(start, 0)
        if end <= start:
            return b""
        t = log_chunks.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.start_offset, t.data)
                .where(_chunks(key), t.start_offset < end,
                       t.start_offset > start - CHUNK_BYTES)
                .order_by(t.start_offset)).all()
        parts = []
        for offset, data in rows:
            piece = bytes(data)[max(start - offset, 0):max(end - offset, 0)]
            parts.append(piece)
        return b"".join(parts)

    def iterate(self, key: LogKey, end: int | None = None) -> Iterator[bytes]:
        """The log's chunks in order up to ``end``, :data:`ITERATE_ROWS` rows a query
        (no connection held between them: a slow download holds none)."""
        end = self.size(key) if end is None else end
        t, offset = log_chunks.c, 0
        while offset < end:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(t.start_offset, t.data)
                    .where(_chunks(key), t.start_offset >= offset, t.start_offset < end)
                    .order_by(t.start_offset).limit(ITERATE_ROWS)).all()
            if not rows:
                return  # rewritten meanwhile
            for start, data in rows:
                yield bytes(data)[:end - start]
                offset = start + len(data)


class UpgradedLogs(DbLogs):
    """:class:`DbLogs` of an installation whose older attempts have file logs
    (recorded before logs moved to the database): writes go to the database; an
    attempt recorded with its file (the location :class:`FileLogs` records, checked
    as FileLogs does: never a path outside the logs folder) is read from that file
    while the database holds nothing of it."""

    def __init__(self, engine: Engine, files: FileLogs, *,
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(engine, flush_seconds=flush_seconds)
        self.files = files

    def owns(self, row: AttemptRow) -> bool:
        return super().owns(row) or self.files.owns(row)

    def _file(self, key: LogKey) -> bool:
        """Whether ``key``'s log is its file: there is one and the database never got
        this log (a re-attached attempt rewrites an old file log into the database)."""
        return self.files.available(key) and not self.holds(key)

    def available(self, key: LogKey) -> bool:
        return self.files.available(key) if self._file(key) else super().available(key)

    def size(self, key: LogKey) -> int:
        return self.files.size(key) if self._file(key) else super().size(key)

    def read(self, key: LogKey, start: int, end: int) -> bytes:
        return self.files.read(key, start, end) if self._file(key) \
            else super().read(key, start, end)

    def iterate(self, key: LogKey, end: int | None = None) -> Iterator[bytes]:
        return self.files.iterate(key, end) if self._file(key) else super().iterate(key, end)


def _where(key: LogKey) -> str:
    return WHERE.format(task=key.task_id, attempt=key.attempt, run=key.run_id)


class _DbWriter:
    """Buffers one attempt's log; its own flusher thread appends what is pending in
    one transaction once a chunk's worth waits, every ``flush_seconds``, and at close."""

    def __init__(self, logs: DbLogs, key: LogKey, token: bytes) -> None:
        self.where = _where(key)
        self._logs, self._key, self._token = logs, key, token
        self._buffer = bytearray()
        self._cond = threading.Condition()  # the task's bytes vs the flusher taking them
        self._seq = self._offset = 0  # touched by the flusher thread only
        self._error: str | None = None
        self._fenced = False  # a later writer opened this log: writes are dropped
        self._closed = False
        self._flusher = threading.Thread(target=self._run, daemon=True,
                                         name=f"log-flush-{key.task_id}")
        self._flusher.start()

    def write(self, data: bytes) -> None:
        with self._cond:
            self._cond.wait_for(lambda: len(self._buffer) < MAX_PENDING
                                or self._error is not None or self._fenced)
            self._raise()
            if self._fenced:
                return  # no-op: the log belongs to the writer opened after this one
            self._buffer += data
            if len(self._buffer) >= CHUNK_BYTES:
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._flusher.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise LogUnwritable(self._error)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or len(self._buffer) >= CHUNK_BYTES,
                                    self._logs.flush_seconds)
                closing = self._closed
                data, self._buffer = bytes(self._buffer), bytearray()
                self._cond.notify_all()  # room again for a waiting write
            if data and self._error is None and not self._fenced:
                self._append(data)
            if closing:
                return

    def _append(self, data: bytes) -> None:
        """``data`` as rows of at most :data:`CHUNK_BYTES`, in one transaction, if
        this writer still holds the fence."""
        step = CHUNK_BYTES
        rows = [{"run_id": self._key.run_id, "task_id": self._key.task_id,
                 "attempt": self._key.attempt, "seq": self._seq + n,
                 "start_offset": self._offset + at, "data": data[at:at + step]}
                for n, at in enumerate(range(0, len(data), step))]
        try:
            with self._logs.engine.begin() as conn:
                if not self._holds_fence(conn):
                    with self._cond:
                        self._fenced = True
                        self._buffer = bytearray()
                        self._cond.notify_all()
                    log.info("attempt log reopened by a later writer; this one stops",
                             extra={"path": self.where})
                    return
                conn.execute(log_chunks.insert(), rows)
        except SQLAlchemyError as exc:
            with self._cond:
                self._error = UNWRITABLE.format(path=self.where, problem=_cause(exc))
                self._cond.notify_all()
            log.warning("attempt log not written", extra={"path": self.where,
                                                          "reason": self._error})
            return
        self._seq += len(rows)
        self._offset += len(data)

    def _holds_fence(self, conn: Connection) -> bool:
        t = log_chunks.c
        token = conn.execute(
            sa.select(t.data).where(_of(self._key), t.seq == FENCE_SEQ)
            .with_for_update()).scalar()
        return token is not None and bytes(token) == self._token
