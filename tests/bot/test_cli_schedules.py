"""`flowbot schedules` over a real SQLite database written by the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from runner.model.flows import Flow, flow_from_data
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Fire, Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from runner.state.db import connect
from tests.clock import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def make_flow(flow_id: str, *triggers: dict[str, Any]) -> Flow:
    return flow_from_data({
        "id": flow_id,
        "tasks": [{"id": "main", "image": "busybox:latest", "commands": ["true"]}],
        "triggers": [{"type": "schedule", **t} for t in triggers],
    }, f"flows/{flow_id}.yml")


class NamingSink:
    def fire(self, fire: Fire) -> str | None:
        return f"run-{fire.flow_id}"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'flowbot.db'}"
    engine = connect(url)
    clock = FakeClock(T0)
    Registry(engine, clock).sync("acme/data", "c1", [
        make_flow("nightly", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}),
        make_flow("hourly", {"cron": "0 * * * *"}, {"id": "off", "cron": "@daily",
                                                     "enabled": False}),
    ])
    Registry(engine, clock).sync("acme/web", "c9", [make_flow("ping", {"cron": "*/5 * * * *"})])
    clock.advance(3600)
    store = SqlScheduleStore(engine, clock, instance_id="cli")
    Scheduler(store, NamingSink(), clock).tick(clock.now())
    SqlScheduleStore(engine, clock).pause("acme/web", "ping")
    engine.dispose()
    return url


def test_json_lists_next_fires_in_the_schedules_timezone_last_run_and_state(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedules", "--database-url", db_url, "--format", "json"]) == 0

    out = json.loads(capsys.readouterr().out)
    rows = {(r["repo"], r["flow_id"], r["trigger_id"]): r for r in out}
    nightly = rows[("acme/data", "nightly", "schedule")]
    assert nightly["state"] == "active"
    assert nightly["next_fires"] == [
        "2026-03-03T02:30:00+01:00", "2026-03-04T02:30:00+01:00", "2026-03-05T02:30:00+01:00"]
    hourly = rows[("acme/data", "hourly", "schedule")]
    assert (hourly["last_fire_at"], hourly["last_run_id"]) == (
        "2026-03-02T10:00:00+00:00", "run-hourly")
    assert hourly["next_fires"][0] == "2026-03-02T11:00:00+00:00"
    off = rows[("acme/data", "hourly", "off")]
    assert (off["state"], off["next_fires"]) == ("disabled", [])
    assert rows[("acme/web", "ping", "schedule")]["state"] == "paused"


def test_text_table_filtered_by_repo(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedules", "--database-url", db_url, "--repo", "acme/web"]) == 0

    header, line = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["REPO", "FLOW", "TRIGGER", "STATE"]
    assert line.split()[:5] == ["acme/web", "ping", "schedule", "paused", "*/5"]


def test_no_schedules_says_so(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedules", "--database-url", db_url, "--repo", "nobody/none"]) == 0
    assert capsys.readouterr().out.strip() == "no schedules registered for nobody/none"


def test_unreachable_database_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    assert main(["schedules", "--database-url", url]) == 2
    assert "could not migrate the database" in capsys.readouterr().err


def test_a_fresh_database_is_migrated_without_a_word_on_stderr(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "schedules", "--database-url", url],
        capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "no schedules registered\n", "")
