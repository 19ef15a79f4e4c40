"""Exactly once under crash: a scheduler process killed between recording a
fire and starting (or recording) its run; the restarted scheduler starts it once."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from scheduling_support import T0, fire_rows, make_flow
from sqlalchemy.engine import Engine

from runner.scheduling.fires import FireState
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import LEASE, Fire, Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from tests.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]

# The doomed scheduler: its sink dies the hard way, optionally after the run
# "started" (written to the journal), before the scheduler could record that.
CHILD = """
import os, sys
from datetime import datetime
from tests.clock import FakeClock
from runner.state.db import connect
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore

url, journal, mode, now = sys.argv[1:5]

class DyingSink:
    def fire(self, fire):
        if mode == "after-start":
            with open(journal, "a") as out:
                out.write(fire.key + "\\n")
                out.flush()
                os.fsync(out.fileno())
        os._exit(17)

clock = FakeClock(datetime.fromisoformat(now))
store = SqlScheduleStore(connect(url), clock, instance_id="solo")
Scheduler(store, DyingSink(), clock).tick(clock.now())
"""


class JournalSink:
    """Starts a 'run' by appending its key to a journal; idempotent on the key."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal

    def keys(self) -> list[str]:
        return self.journal.read_text().split() if self.journal.exists() else []

    def fire(self, fire: Fire) -> str | None:
        if fire.key not in self.keys():
            with self.journal.open("a") as out:
                out.write(fire.key + "\n")
        return f"run-{self.keys().index(fire.key) + 1}"


def _crash(engine: Engine, journal: Path, mode: str, now: str) -> int:
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(journal), mode, now], cwd=ROOT, timeout=120
    )
    return child.returncode


@pytest.mark.parametrize("mode", ["before-start", "after-start"])
def test_a_slot_runs_exactly_once_across_a_crash(
    db_engine: Engine, tmp_path: Path, mode: str
) -> None:
    clock = FakeClock(T0)
    Registry(db_engine, clock).sync("acme/data", "c1", [make_flow("a", {"cron": "0 * * * *"})])
    clock.advance(3600)
    journal = tmp_path / "runs.journal"

    assert _crash(db_engine, journal, mode, clock.now().isoformat()) == 17
    [recorded] = fire_rows(db_engine)
    assert recorded.state == FireState.FIRED  # claimed, outcome unknown

    sink = JournalSink(journal)
    restarted = Scheduler(SqlScheduleStore(db_engine, clock, instance_id="solo"), sink, clock)
    recovered = restarted.recover()
    assert restarted.tick(clock.now()) == [] and restarted.recover() == []

    assert [(f.state, f.run_id) for f in recovered] == [(FireState.STARTED, "run-1")]
    assert sink.keys() == [recovered[0].key]
    [final] = fire_rows(db_engine)
    assert (final.state, final.run_id) == (FireState.STARTED, "run-1")


def _orphaned_fire(db_engine: Engine, tmp_path: Path) -> tuple[FakeClock, Path]:
    """Instance "solo" recorded an hourly slot and died before starting it."""
    clock = FakeClock(T0)
    Registry(db_engine, clock).sync("acme/data", "c1", [make_flow("a", {"cron": "0 * * * *"})])
    clock.advance(3600)
    journal = tmp_path / "runs.journal"
    assert _crash(db_engine, journal, "before-start", clock.now().isoformat()) == 17
    return clock, journal


def test_another_instance_takes_over_an_orphaned_fire_only_after_the_lease(
    db_engine: Engine, tmp_path: Path
) -> None:
    clock, journal = _orphaned_fire(db_engine, tmp_path)
    other = Scheduler(SqlScheduleStore(db_engine, clock, instance_id="other"),
                      JournalSink(journal), clock)

    assert other.recover() == []  # "solo" may still be alive and starting it
    clock.advance(LEASE.total_seconds() + 1)
    taken = other.recover()

    assert [f.state for f in taken] == [FireState.STARTED]
    assert JournalSink(journal).keys() == [taken[0].key]
    assert other.recover(clock.now() + timedelta(hours=1)) == []


def test_the_lease_fallback_leaves_a_live_replicas_fire_alone(
    db_engine: Engine, tmp_path: Path
) -> None:
    clock, journal = _orphaned_fire(db_engine, tmp_path)
    live = {"solo", "other"}  # "solo" still holds its replica lease
    other = Scheduler(SqlScheduleStore(db_engine, clock, instance_id="other"),
                      JournalSink(journal), clock, live=lambda: live)
    clock.advance(LEASE.total_seconds() + 1)

    assert other.recover() == []  # a fast clock's "old" claim of a live replica: spared
    live.discard("solo")  # its lease ran out (and no replica adopted it)
    assert [f.state for f in other.recover()] == [FireState.STARTED]
