"""Database access shared by every store: one SQLAlchemy ``MetaData``, engine
creation with the right pragmas, and migrations.

Tables are declared next to the code that owns them (``runner/state/store.py`` for
runs, ``runner/scheduling/schedules.py`` for schedules, ``bot/intake/deliveries.py`` for webhook
deliveries) on :data:`metadata`. Each owner has its own Alembic branch under
``runner/state/migrations/versions`` (``branch_labels``), and :func:`migrate` brings
every branch to its head. SQLite (WAL) is the default; a ``postgresql+psycopg``
URL works the same for several replicas.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine

from runner.errors import StoreError

log = logging.getLogger(__name__)

metadata = MetaData()

_MIGRATIONS = Path(__file__).parent / "migrations"


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


def migrate(engine: Engine) -> None:
    """Bring every migration branch to its head. Safe to call on every start."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
    except Exception as exc:  # alembic and drivers raise many unrelated types
        raise StoreError(f"could not migrate the database at {engine.url!r}: {exc}") from exc


def connect(url: str) -> Engine:
    """Open and migrate the database at ``url``."""
    engine = open_engine(url)
    migrate(engine)
    return engine
