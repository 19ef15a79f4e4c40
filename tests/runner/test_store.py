"""The run store on SQLite and PostgreSQL: records, compare-and-set status
changes, the audit log, outputs and the queries the bot and concurrency use."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from runner.model.flows import flow_from_data
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore
from tests.clock import FakeClock

FLOW = flow_from_data({
    "id": "nightly",
    "tasks": [{"id": "a", "image": "busybox", "commands": ["true"]},
              {"id": "b", "image": "busybox", "commands": ["true"], "needs": ["a"]}],
    "errors": [{"id": "alert", "image": "busybox", "commands": ["true"]}],
}, path="flows/nightly.yml")
START = datetime(2026, 1, 1, tzinfo=UTC)
MANUAL = Trigger(TriggerType.MANUAL, actor="octocat")


def _store(db_engine: Engine) -> tuple[RunStore, FakeClock]:
    clock = FakeClock(START)
    return RunStore(db_engine, clock), clock


def test_a_created_run_keeps_flow_trigger_inputs_and_one_row_per_task(db_engine: Engine) -> None:
    store, _ = _store(db_engine)
    scheduled = Trigger(TriggerType.SCHEDULE, "nightly", START)
    run = store.create_run(FLOW, repo="o/r", commit="abc", trigger=scheduled, inputs={"n": 3})
    got = store.get_run(run.id)
    assert got == run
    assert (got.status, got.flow_id, got.flow_path, got.inputs) == (
        Status.QUEUED, "nightly", "flows/nightly.yml", {"n": 3})
    assert got.trigger == scheduled and got.created_at == START
    assert got.flow_data == FLOW.data and got.flow_digest == FLOW.digest
    rows = store.task_rows(run.id)
    assert [(r.task_id, r.handler, r.status) for r in rows] == [
        ("a", False, Status.QUEUED), ("b", False, Status.QUEUED), ("alert", True, Status.QUEUED)]


def test_status_changes_are_compare_and_set_and_audited(db_engine: Engine) -> None:
    store, clock = _store(db_engine)
    run = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={})
    clock.advance(5)
    assert store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED])
    assert not store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED])
    clock.advance(5)
    assert store.set_run_status(run.id, Status.FAILED, error="task a failed", failed_task="a")
    got = store.get_run(run.id)
    assert got is not None
    assert (got.status, got.error, got.failed_task) == (Status.FAILED, "task a failed", "a")
    assert got.started_at == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert got.finished_at == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    moves = [(t.from_status, t.to_status) for t in store.transitions(run.id) if t.task_id is None]
    assert moves == [(None, Status.QUEUED), (Status.QUEUED, Status.RUNNING),
                     (Status.RUNNING, Status.FAILED)]
    assert not store.set_run_status("nope", Status.RUNNING)


def test_attempts_tasks_and_outputs_round_trip(db_engine: Engine) -> None:
    store, clock = _store(db_engine)
    run = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={})
    store.set_task_status(run.id, "a", Status.RUNNING)
    store.start_attempt(run.id, "a", 1, "/logs/a.1.log")
    store.set_attempt_handle(run.id, "a", 1, "c0ffee")
    clock.advance(2)
    store.finish_attempt(run.id, "a", 1, Status.FAILED, exit_code=3, reason="exit code 3")
    store.start_attempt(run.id, "a", 2, "/logs/a.2.log")
    store.finish_attempt(run.id, "a", 2, Status.SUCCESS, exit_code=0)
    store.save_outputs(run.id, "a", {"count": "1"})
    store.save_outputs(run.id, "a", {"count": "2", "line": "x=y"})
    store.set_task_status(run.id, "a", Status.SUCCESS, exit_code=0, attempts=2)
    attempts = store.attempts(run.id, "a")
    assert [(a.attempt, a.status, a.exit_code, a.reason) for a in attempts] == [
        (1, Status.FAILED, 3, "exit code 3"), (2, Status.SUCCESS, 0, None)]
    assert attempts[0].handle == "c0ffee" and attempts[0].log_path == "/logs/a.1.log"
    row = store.task_rows(run.id)[0]
    assert (row.status, row.attempts, row.exit_code, row.duration) == (Status.SUCCESS, 2, 0, 2.0)
    assert row.outputs == {"count": "2", "line": "x=y"}
    assert store.outputs(run.id) == {"a": {"count": "2", "line": "x=y"}}


def test_queries_for_pages_and_concurrency(db_engine: Engine) -> None:
    store, clock = _store(db_engine)
    first = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={})
    clock.advance(1)
    second = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={})
    clock.advance(1)
    other = store.create_run(FLOW, repo="o/other", commit=None, trigger=MANUAL, inputs={})
    skipped = store.create_run(FLOW, repo="o/r", commit=None, trigger=MANUAL, inputs={},
                               status=Status.SKIPPED, error="limit reached")
    store.set_run_status(first.id, Status.RUNNING)
    assert [r.id for r in store.list_runs(repo="o/r", limit=2)] == [skipped.id, second.id]
    assert [r.id for r in store.list_runs(flow_id="nightly")][-1] == first.id
    assert [r.id for r in store.active_runs("o/r", "nightly")] == [first.id, second.id]
    assert [r.id for r in store.runs_with_status(Status.QUEUED)] == [second.id, other.id]
    assert all(r.status is Status.SKIPPED for r in store.task_rows(skipped.id))
