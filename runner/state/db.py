"""Database access shared by every store: one SQLAlchemy ``MetaData``, engine
creation with the right pragmas, and migrations.

Tables are declared next to the code that owns them (``runner/state/store.py`` for
runs, ``runner/scheduling/schedules.py`` for schedules, ``bot/intake/deliveries.py`` for webhook
deliveries) on :data:`metadata`. Each owner has its own Alembic branch under
``runner/state/migrations/versions`` (``branch_labels``), and :func:`migrate` brings
every branch to its head, on PostgreSQL under an advisory lock so replicas
starting together migrate one after the other. SQLite (WAL) is the default for
one process: :func:`connect` with ``exclusive`` takes an ``fcntl`` lock on
``<file>.lock`` for the life of the process (several engines on the file in one
process are fine) and refuses a second process with :class:`SqliteInUse`. A
``postgresql+psycopg`` URL serves several replicas.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import IO, Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Engine

from runner.errors import StoreError

log = logging.getLogger(__name__)

metadata = MetaData()

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x666C6F77  # "flow": the advisory lock key replicas migrate under

_held: dict[Path, IO[str]] = {}  # SQLite files this process holds, with their lock files
_held_guard = threading.Lock()


@atexit.register
def _release_held() -> None:
    """The process ends: its SQLite locks go with it (closed, not left to the collector)."""
    with _held_guard:
        for handle in _held.values():
            handle.close()
        _held.clear()


class SqliteInUse(StoreError):
    """Another process holds the SQLite database (SQLite serves one process)."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        super().__init__(
            f"the SQLite database {path} is in use by another flowbot process"
            f"{f' (pid {holder})' if holder else ''}: SQLite serves one process. Stop that "
            "process, give this one its own FLOWBOT_DATA_DIR, or set FLOWBOT_DATABASE_URL "
            "to a PostgreSQL database (postgresql+psycopg://...) to run several replicas")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL mode and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_file(engine: Engine) -> Path | None:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # not a file of its own: nothing another process could open
    return Path(database).resolve()


def hold_sqlite(engine: Engine) -> None:
    """Take this process's exclusive lock on ``engine``'s SQLite file (``<file>.lock``),
    held until the process ends; again in the same process is a no-op. Raises
    :class:`SqliteInUse` when another process holds it. Not SQLite: nothing."""
    path = _sqlite_file(engine)
    if path is None:
        return  # PostgreSQL (or an in-memory database) admits several processes
    with _held_guard:
        if path in _held:
            return  # this process holds it already (several engines, one process)
        handle = open(f"{path}.lock", "a+", encoding="utf-8")  # noqa: SIM115 (held for life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise SqliteInUse(path, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _held[path] = handle


def holds_file_lock(engine: Engine) -> bool:
    """True when this process holds ``engine``'s SQLite file (:func:`hold_sqlite`)."""
    path = _sqlite_file(engine)
    with _held_guard:
        return path is not None and path in _held


def migrate(engine: Engine) -> None:
    """Bring every migration branch to its head. Safe to call on every start, and
    from several processes at once on PostgreSQL (they take turns under an
    advisory lock held by the migrating transaction)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
    except Exception as exc:  # alembic and drivers raise many unrelated types
        raise StoreError(f"could not migrate the database at {engine.url!r}: {exc}") from exc


def connect(url: str, *, exclusive: bool = False) -> Engine:
    """Open and migrate the database at ``url``. ``exclusive`` (``flowbot serve``):
    on SQLite, hold the file for this process first (:func:`hold_sqlite`)."""
    engine = open_engine(url)
    if exclusive:
        try:
            hold_sqlite(engine)
        except SqliteInUse:
            engine.dispose()
            raise
    migrate(engine)
    return engine
