"""A run's copy of the repository within the operator's bounds, through the run
service on the process backend with real git repositories: past a bound the run
ends failed naming the setting, no task runs and no staged files stay behind;
within them the run goes as before."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from runner.backends.process_backend import ProcessBackend
from runner.clock import SystemClock
from runner.model.flows import Flow, flow_from_data
from runner.running.service import RunService
from runner.running.workspace import ExportLimits
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore
from tests.runner.repokit import committed

KIB = 1024
LIMITS = ExportLimits(max_bytes=64 * KIB, max_files=20, seconds=60.0)
FLOW = {"id": "peek", "tasks": [{"id": "look", "image": "busybox:latest",
                                 "commands": ["wc -c < data.bin", "touch RAN"]}]}


def _service(tmp_path: Path, engine: Engine) -> RunService:
    return RunService(RunStore(engine, SystemClock()), ProcessBackend(owner="t"),
                      tmp_path / "data", {}, SystemClock(), owner="t", workspace_limits=LIMITS)


def _commit(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    source = tmp_path / "origin"
    return source, committed(source, files)


def _submit(service: RunService, source: Path, commit: str) -> tuple[str, Status, str | None]:
    flow: Flow = flow_from_data(FLOW, "flows/peek.yml")
    done = service.submit(flow, {}, repo="o/r", commit=commit, source=source,
                          trigger=Trigger(TriggerType.MANUAL, "me"))
    return done.run_id, done.status, done.reason


def _nothing_staged(tmp_path: Path) -> bool:
    work = tmp_path / "data" / "work"
    return not work.exists() or list(work.iterdir()) == []


def test_a_repository_over_the_byte_bound_fails_the_run_and_runs_nothing(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    service = _service(tmp_path, sqlite_engine)
    source, commit = _commit(tmp_path, {"data.bin": b"\0" * (1 << 20)})
    run_id, status, reason = _submit(service, source, commit)
    assert status is Status.FAILED
    assert reason == (
        f"cannot prepare the run's files: the repository at {commit} is larger than "
        "FLOWBOT_WORKSPACE_MAX_BYTES (64 KiB), the most a run's copy of it may hold: keep "
        "large data out of the repository (a task can fetch it) or have the operator raise "
        "FLOWBOT_WORKSPACE_MAX_BYTES")
    run = service.store.get_run(run_id)
    assert run is not None and (run.status, run.error) == (Status.FAILED, reason)
    assert service.store.attempts(run_id) == []
    assert _nothing_staged(tmp_path)


def test_a_repository_over_the_file_bound_fails_the_run(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    service = _service(tmp_path, sqlite_engine)
    files = {f"gen/{n:03}.txt": b"x" for n in range(40)} | {"data.bin": b"x"}
    source, commit = _commit(tmp_path, files)
    run_id, status, reason = _submit(service, source, commit)
    assert status is Status.FAILED and reason is not None
    assert "holds more than FLOWBOT_WORKSPACE_MAX_FILES (20) files and folders" in reason
    assert service.store.attempts(run_id) == []
    assert _nothing_staged(tmp_path)


def test_a_repository_within_the_bounds_runs_as_before(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    service = _service(tmp_path, sqlite_engine)
    source, commit = _commit(tmp_path, {"data.bin": b"z" * (60 * KIB)})
    run_id, status, _ = _submit(service, source, commit)
    assert status is Status.QUEUED
    final = service.execute(run_id)
    assert final.status is Status.SUCCESS
    [attempt] = service.store.attempts(run_id, "look")
    assert attempt.log_path is not None
    assert Path(attempt.log_path).read_text().split() == [str(60 * KIB)]
    assert not (source / "RAN").exists()  # the task wrote in its own copy
    assert _nothing_staged(tmp_path)  # and that copy went with the run
