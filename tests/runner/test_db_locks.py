"""Replicas starting together migrate one after the other (PostgreSQL advisory
lock); a SQLite database admits one process (a file lock), several engines of
that one process alike."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from runner.state.db import SqliteInUse, connect, holds_file_lock
from tests.conftest import fresh_database

ROOT = Path(__file__).resolve().parents[2]
MIGRATE = "import sys; from runner.state.db import connect; connect(sys.argv[1]); print('ok')"
HOLD = """
import sys
from runner.state.db import connect
connect(sys.argv[1], exclusive=True)
print('held', flush=True)
sys.stdin.read()
"""


@pytest.fixture
def empty_postgres(postgres_url: str) -> Iterator[str]:
    """A new, never migrated database on the test PostgreSQL server."""
    with fresh_database(postgres_url, f"flowbot_migrate_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.mark.postgres
def test_three_processes_migrate_one_new_database_at_once(empty_postgres: str) -> None:
    children = [subprocess.Popen([sys.executable, "-c", MIGRATE, empty_postgres], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    answers = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], answers
    assert [out.strip() for out, _ in answers] == ["ok", "ok", "ok"]
    engine = connect(empty_postgres)
    try:
        assert {"replicas", "runs", "webhook_deliveries", "schedule_fires"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_one_process_may_open_its_sqlite_file_with_several_engines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flowbot.db'}"
    first, second = connect(url, exclusive=True), connect(url, exclusive=True)
    try:
        assert holds_file_lock(first) and holds_file_lock(second)
        assert not holds_file_lock(connect(f"sqlite:///{tmp_path / 'other.db'}"))
    finally:
        first.dispose()
        second.dispose()


def test_a_second_process_on_a_sqlite_file_is_refused_by_name(tmp_path: Path) -> None:
    database = tmp_path / "flowbot.db"
    url = f"sqlite:///{database}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = subprocess.run([sys.executable, "-c", HOLD, url], cwd=ROOT, text=True,
                                 stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert refused.returncode != 0
        assert f"the SQLite database {database} is in use by another flowbot process " \
               f"(pid {holder.pid})" in refused.stderr
        assert "FLOWBOT_DATABASE_URL" in refused.stderr and "PostgreSQL" in refused.stderr
        with pytest.raises(SqliteInUse):  # this test's process is a second process too
            connect(url, exclusive=True)
        connect(url).dispose()  # reading without holding it (tools, tests) stays possible
    finally:
        holder.communicate("", timeout=30)
    connect(url, exclusive=True).dispose()  # the holder ended: the file is free
