"""One flow at a time, across every replica: the lock around a flow's concurrency.

A flow's concurrency limit is read-then-write (count the active runs, then insert
one or move one to running). :meth:`FlowLocks.hold` makes that one critical
section per ``(repo, flow)`` for every process sharing the database:

- on PostgreSQL, a session advisory lock (``pg_advisory_lock(hashtext(key))``) on a
  connection of its own, unlocked in ``finally`` (a connection that cannot unlock
  is thrown away, which ends its session and with it the lock);
- in every process, a threading lock per key first, so threads of one process
  queue in memory and at most one pooled connection per key waits on the server.

SQLite allows one process only, so the threading lock is the whole story there.
Two keys whose hashes collide only wait for each other; nothing is wrong then.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

_LOCK = sa.text("SELECT pg_advisory_lock(hashtext(:key))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtext(:key))")


class FlowLocks:
    """Mutual exclusion per flow, shared by the processes on one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._shared = engine.dialect.name == "postgresql"
        self._guard = threading.Lock()
        self._local: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, repo: str, flow_id: str) -> Iterator[None]:
        """Hold flow ``flow_id`` of ``repo`` exclusively for the ``with`` block."""
        key = f"flowbot:flow:{repo}:{flow_id}"
        with self._lock_of(key):
            if not self._shared:
                yield  # one process: the threading lock is enough
                return
            with self.engine.connect() as conn:
                conn.execute(_LOCK, {"key": key})
                conn.commit()  # the lock is the session's; no transaction stays open
                try:
                    yield
                finally:
                    _unlock(conn, key)

    def _lock_of(self, key: str) -> threading.Lock:
        with self._guard:
            return self._local.setdefault(key, threading.Lock())


def _unlock(conn: Connection, key: str) -> None:
    try:
        conn.execute(_UNLOCK, {"key": key})
        conn.commit()
    except Exception:
        conn.invalidate()  # closing the session releases its advisory locks
        raise
