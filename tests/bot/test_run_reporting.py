"""Run reporting: scheduled failures open one issue, closed on the next success."""

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from bot.handlers.run_reporting import RunReporting, _RunLocks, state_of
from bot.services import Services
from runner.state.records import EventKind, RunEvent, Status, Trigger, TriggerType
from runner.validation.validate import validate_files
from tests.clock import FakeClock
from tests.fakes import FakeRuns, LocalGitHub, make_services

NIGHTLY = b"""id: nightly
triggers:
  - {id: night, type: schedule, cron: "0 3 * * *"}
tasks:
  - {id: hello, image: "busybox:latest", commands: [echo hi]}
"""
SHA = "e" * 40


@pytest.fixture
def services(sqlite_engine: Engine) -> Services:
    return make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)))


def _scheduled_run(services: Services, status: Status) -> str:
    [flow] = validate_files({"flows/nightly.yml": NIGHTLY}).flows
    run = services.store.create_run(flow, repo="acme/flows", commit=SHA, inputs={},
                                    trigger=Trigger(TriggerType.SCHEDULE, "night"))
    runs = services.runs
    assert isinstance(runs, FakeRuns)
    runs.finish(run.id, status, failed_task="hello" if status is not Status.SUCCESS else None)
    reporting = services.reporting
    assert isinstance(reporting, RunReporting)
    listen = reporting.listen
    listen(RunEvent(run.id, EventKind.FINISHED, status=status))
    listen(RunEvent(run.id, EventKind.FINISHED, status=status))  # a repeated event
    return run.id


def test_failure_opens_one_issue_and_success_closes_it(services: Services) -> None:
    first = _scheduled_run(services, Status.FAILED)
    second = _scheduled_run(services, Status.TIMED_OUT)
    github = services.github
    assert isinstance(github, LocalGitHub)
    client = github.clients["acme/flows"]
    [(number, issue)] = client.issues.items()
    assert issue["title"] == "Scheduled run of nightly failed" and issue["open"]
    assert f"/runs/{first}" in issue["body"] and "in task `hello`" in issue["body"]
    assert f"/runs/{second}" in issue["comments"][0]
    fixed = _scheduled_run(services, Status.SUCCESS)
    assert not client.issues[number]["open"]
    assert f"Run [{fixed}]" in client.issues[number]["comments"][-1]
    assert [s["state"] for s in client.statuses] == ["failure", "failure", "success"]
    assert {s["context"] for s in client.statuses} == {"flowbot/run/nightly"}


def test_a_runs_lock_is_freed_once_its_reports_are_out(services: Services) -> None:
    _scheduled_run(services, Status.FAILED)
    reporting = services.reporting
    assert isinstance(reporting, RunReporting)
    assert len(reporting.locks) == 0


def test_reports_of_one_run_take_turns_and_leave_no_lock_behind() -> None:
    locks, order = _RunLocks(), []
    second_tried = threading.Event()

    def second() -> None:
        second_tried.set()
        with locks.hold("r1"):
            order.append("second")

    with locks.hold("r1"):
        other = threading.Thread(target=second)
        other.start()
        assert second_tried.wait(5)
        with locks.hold("r2"):  # another run is not held up
            order.append("other run")
            assert len(locks) == 2
        order.append("first")
    other.join(5)
    assert order == ["other run", "first", "second"] and len(locks) == 0


def test_cancelled_scheduled_run_opens_no_issue(services: Services) -> None:
    _scheduled_run(services, Status.CANCELLED)
    github = services.github
    assert isinstance(github, LocalGitHub)
    assert github.clients["acme/flows"].issues == {}


@pytest.mark.parametrize(("status", "state"), [
    (Status.QUEUED, "pending"), (Status.RUNNING, "pending"), (Status.SUCCESS, "success"),
    (Status.FAILED, "failure"), (Status.TIMED_OUT, "failure"), (Status.CANCELLED, "error"),
    (Status.SKIPPED, "error"),
])
def test_status_states(status: Status, state: str) -> None:
    assert state_of(status) == state
