"""Attempt logs in the database (:class:`DbLogs`): what every replica on one
PostgreSQL reads, so a run page or live tail served by any replica shows the log
of a task another replica runs.

Table ``log_chunks`` (migration ``runs_0005``): a log is the chunks of its
``(run_id, task_id, attempt)`` in ``seq`` order, each holding at most
:data:`CHUNK_BYTES` starting at byte ``start_offset``. The writer buffers what
the task prints and appends it at least every :data:`FLUSH_SECONDS` (a live tail
lags no more than that) or every :data:`CHUNK_BYTES`, and at close. A read of a
byte range fetches only the chunks that overlap it (index on ``start_offset``).
Rows go with their run (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from runner.running.logstore import UNWRITABLE, LogKey, LogStore, LogUnwritable, LogWriter
from runner.state.db import metadata
from runner.state.run_tables import runs

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024  # most bytes in one row; a flush of more makes several rows
FLUSH_SECONDS = 0.5  # longest a written byte waits before it is readable elsewhere
ITERATE_ROWS = 16  # chunks per query of a whole-log read (at most 1 MiB)
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
    t = log_chunks.c
    return sa.and_(t.run_id == key.run_id, t.task_id == key.task_id, t.attempt == key.attempt)


def _cause(exc: BaseException) -> str:
    """The driver's message, without SQL or parameters (they hold log bytes)."""
    return str(getattr(exc, "orig", None) or type(exc).__name__).strip()


class DbLogs(LogStore):
    """Logs as chunks in table ``log_chunks`` of ``engine``'s database."""

    def __init__(self, engine: Engine, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.engine, self.flush_seconds = engine, flush_seconds

    def location(self, key: LogKey) -> str:
        return f"db:log_chunks/{key.run_id}/{key.task_id}.{key.attempt}"

    def open(self, key: LogKey) -> LogWriter:
        try:
            with self.engine.begin() as conn:
                conn.execute(log_chunks.delete().where(_of(key)))
        except SQLAlchemyError as exc:
            raise LogUnwritable(UNWRITABLE.format(path=_where(key), problem=_cause(exc))) \
                from exc
        return _DbWriter(self, key)

    def size(self, key: LogKey) -> int:
        t = log_chunks.c
        with self.engine.connect() as conn:
            last = conn.execute(
                sa.select(t.start_offset + sa.func.length(t.data)).where(_of(key))
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
                .where(_of(key), t.start_offset < end,
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
                    .where(_of(key), t.start_offset >= offset, t.start_offset < end)
                    .order_by(t.start_offset).limit(ITERATE_ROWS)).all()
            if not rows:
                return  # rewritten meanwhile
            for start, data in rows:
                yield bytes(data)[:end - start]
                offset = start + len(data)


def _where(key: LogKey) -> str:
    return WHERE.format(task=key.task_id, attempt=key.attempt, run=key.run_id)


class _DbWriter:
    """Buffers one attempt's log and appends it as chunks: from the writing thread
    once a chunk's worth is waiting, from a timer thread every ``flush_seconds``."""

    def __init__(self, logs: DbLogs, key: LogKey) -> None:
        self.where = _where(key)
        self._logs, self._key = logs, key
        self._buffer = bytearray()
        self._buffer_lock = threading.Lock()  # the task's bytes vs the timer taking them
        self._flush_lock = threading.Lock()  # one append at a time, in order
        self._seq = self._offset = 0
        self._error: str | None = None
        self._closed = threading.Event()
        self._timer = threading.Thread(target=self._tick, daemon=True,
                                       name=f"log-flush-{key.task_id}")
        self._timer.start()

    def write(self, data: bytes) -> None:
        with self._buffer_lock:
            self._raise()
            self._buffer += data
            full = len(self._buffer) >= CHUNK_BYTES
        if full:
            self._flush()
            self._raise()

    def close(self) -> None:
        self._closed.set()
        self._timer.join()
        self._flush()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise LogUnwritable(self._error)

    def _tick(self) -> None:
        while not self._closed.wait(self._logs.flush_seconds):
            self._flush()

    def _flush(self) -> None:
        with self._flush_lock:
            with self._buffer_lock:
                if self._error is not None or not self._buffer:
                    return
                data, self._buffer = bytes(self._buffer), bytearray()
            step = CHUNK_BYTES
            rows = [{"run_id": self._key.run_id, "task_id": self._key.task_id,
                     "attempt": self._key.attempt, "seq": self._seq + n,
                     "start_offset": self._offset + at, "data": data[at:at + step]}
                    for n, at in enumerate(range(0, len(data), step))]
            try:
                with self._logs.engine.begin() as conn:
                    conn.execute(log_chunks.insert(), rows)
            except SQLAlchemyError as exc:
                self._error = UNWRITABLE.format(path=self.where, problem=_cause(exc))
                log.warning("attempt log not written", extra={"path": self.where,
                                                              "reason": self._error})
                return
            self._seq += len(rows)
            self._offset += len(data)
