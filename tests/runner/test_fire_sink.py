"""Scheduled fires become runs of the registered flow, once per slot."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from runner.errors import FlowNotFound
from runner.scheduling.fire_sink import RunSink
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Fire
from runner.state.records import TriggerType
from runner.state.store import RunStore
from runner.validation.validate import validate_files
from tests.clock import FakeClock
from tests.fakes import FakeRuns

FLOW = b"""id: nightly
inputs:
  day: {type: string, default: any}
triggers:
  - {id: night, type: schedule, cron: "0 3 * * *", inputs: {day: sunday}}
tasks:
  - {id: t, image: "busybox:latest", commands: [echo hi]}
"""
SLOT = datetime(2026, 3, 1, 3, tzinfo=UTC)


def test_a_fire_starts_one_run_even_when_recovered_again(sqlite_engine: Engine) -> None:
    clock = FakeClock(SLOT)
    registry, store = Registry(sqlite_engine, clock), RunStore(sqlite_engine, clock)
    registry.sync("acme/flows", "c" * 40, validate_files({"flows/n.yml": FLOW}).flows)
    runs = FakeRuns(store)
    sink = RunSink(registry, store, runs,  # type: ignore[arg-type]
                   lambda repo, sha: Path("/mirrors") / repo)
    fire = Fire(1, "acme/flows", "nightly", "night", SLOT, {"day": "sunday"})
    run_id = sink.fire(fire)
    assert sink.fire(fire) == run_id  # after a crash, recover() asks again
    [submitted] = runs.submitted
    assert submitted["commit"] == "c" * 40 and submitted["inputs"] == {"day": "sunday"}
    assert submitted["source"] == Path("/mirrors/acme/flows")
    assert submitted["trigger"].type is TriggerType.SCHEDULE
    with pytest.raises(FlowNotFound):
        sink.fire(Fire(2, "acme/flows", "gone", "night", SLOT))
