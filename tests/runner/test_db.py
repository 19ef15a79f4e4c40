"""Opening and migrating the database: SQLite (WAL) and PostgreSQL share one contract."""

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from runner.errors import StoreError
from runner.state.db import connect, metadata, migrate


def test_every_declared_table_exists_after_migration(db_engine: Engine) -> None:
    present = set(inspect(db_engine).get_table_names())
    assert {table.name for table in metadata.sorted_tables} <= present


def test_migrating_twice_changes_nothing(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        before = sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    migrate(db_engine)
    with db_engine.connect() as conn:
        after = sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    assert before == after and len(before) >= 4  # one head per store owner


def test_sqlite_runs_in_wal_mode(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_an_unusable_database_is_a_plain_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="could not migrate the database"):
        connect(f"sqlite:///{blocker / 'flowbot.db'}")
