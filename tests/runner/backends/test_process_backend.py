"""The process backend: real host subprocesses, their logs, exit codes and kills."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.backends import make_backend
from runner.backends.base import TaskSpec
from runner.backends.process_backend import ProcessBackend
from runner.errors import BackendError, ConfigError
from runner.flows import PullPolicy


@pytest.fixture
def backend() -> Iterator[ProcessBackend]:
    backend = ProcessBackend(owner="tests")
    yield backend
    for attempt in backend.existing("tests"):
        backend.remove(attempt.handle)


def _spec(tmp_path: Path, script: str, **overrides: object) -> TaskSpec:
    workspace = tmp_path / "repo"
    workspace.mkdir(exist_ok=True)
    output = tmp_path / "outputs" / "build.1"
    output.parent.mkdir(exist_ok=True)
    output.write_bytes(b"")
    fields: dict[str, object] = {
        "run_id": "run-1", "task_id": "build", "attempt": 1, "image": "busybox:latest",
        "argv": ("sh", "-ec", script), "env": {"GREETING": "hello"},
        "workspace": workspace, "workdir": "/workspace", "output_file": output,
    }
    fields.update(overrides)
    return TaskSpec(**fields)  # type: ignore[arg-type]


def _run(backend: ProcessBackend, spec: TaskSpec) -> tuple[int | None, bytes]:
    backend.prepare(spec)
    handle = backend.start(spec)
    logs = b"".join(backend.logs(handle))
    return backend.wait(handle, 30), logs


def test_task_runs_in_workspace_with_env_output_and_exit_code(
    backend: ProcessBackend, tmp_path: Path
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "data.csv").write_text("a,b\n")
    script = (
        'echo "$GREETING"; cat data.csv; echo rows=1 >> "$FLOWBOT_OUTPUT"; echo oops >&2; exit 4'
    )
    code, logs = _run(backend, _spec(tmp_path, script))
    assert code == 4
    assert logs == b"hello\na,b\noops\n"
    assert (tmp_path / "outputs" / "build.1").read_text() == "rows=1\n"


def test_environment_is_minimal(
    backend: ProcessBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWBOT_GITHUB_TOKEN", "not-for-tasks")
    code, logs = _run(backend, _spec(tmp_path, "env | cut -d= -f1 | sort"))
    assert code == 0
    names = set(logs.decode().split())
    assert "FLOWBOT_GITHUB_TOKEN" not in names
    assert {"PATH", "HOME", "LANG", "GREETING", "FLOWBOT_OUTPUT"} <= names


def test_logs_stream_while_the_task_runs(backend: ProcessBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "echo first; while [ ! -e gate ]; do sleep 0.05; done; echo last")
    handle = backend.start(spec)
    chunks = backend.logs(handle)
    assert next(chunks) == b"first\n"
    assert backend.wait(handle, 0.1) is None
    (tmp_path / "repo" / "gate").touch()
    assert b"".join(chunks) == b"last\n"
    assert backend.wait(handle, 30) == 0


def test_kill_stops_the_whole_process_tree(backend: ProcessBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "sleep 300 & echo $! > child.pid; wait")
    handle = backend.start(spec)
    pid_file = tmp_path / "repo" / "child.pid"
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.02)
    child = int(pid_file.read_text())
    assert backend.wait(handle, 0.2) is None
    backend.kill(handle)
    assert backend.wait(handle, 30) == 128 + signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        _wait_gone(child)
    backend.kill(handle)  # idempotent


def _wait_gone(pid: int) -> None:
    """Raise ProcessLookupError once ``pid`` no longer exists (zombies reaped by init)."""
    for _ in range(500):
        os.kill(pid, 0)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1]
        except FileNotFoundError:
            raise ProcessLookupError(pid) from None
        if state.startswith("Z"):
            raise ProcessLookupError(pid)
        time.sleep(0.01)


def test_stray_children_end_with_the_main_process(
    backend: ProcessBackend, tmp_path: Path
) -> None:
    # The background sleep keeps the log pipe open; logs must still end.
    code, logs = _run(backend, _spec(tmp_path, "sleep 300 & echo started"))
    assert (code, logs) == (0, b"started\n")


def test_existing_remove_and_unknown_handles(backend: ProcessBackend, tmp_path: Path) -> None:
    done = backend.start(_spec(tmp_path, "exit 2"))
    assert backend.wait(done, 30) == 2
    running = backend.start(_spec(tmp_path, "sleep 300", task_id="slow", attempt=3))
    found = {e.handle: e for e in backend.existing("tests")}
    assert (found[done].running, found[done].exit_code) == (False, 2)
    assert (found[running].task_id, found[running].attempt, found[running].running) == (
        "slow", 3, True
    )
    assert backend.existing("another-owner") == []
    backend.remove(running)
    backend.remove(running)
    assert [e.handle for e in backend.existing("tests")] == [done]
    assert list(backend.logs(running)) == []
    with pytest.raises(BackendError):
        backend.wait(running, 1)


def test_missing_program_is_a_backend_error(backend: ProcessBackend, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "", argv=("/nonexistent/flowbot-shell", "-c", "true"))
    with pytest.raises(BackendError) as info:
        backend.start(spec)
    assert str(info.value).startswith("cannot start task build: ")


def test_ignored_settings_are_warned_once_per_run(
    backend: ProcessBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(tmp_path, "true", network="none", memory="64m", pull=PullPolicy.NEVER)
    with caplog.at_level(logging.WARNING, logger="runner.backends.process_backend"):
        backend.prepare(spec)
        backend.prepare(spec)
        backend.prepare(_spec(tmp_path, "true", run_id="run-2"))
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "process backend ignores image busybox:latest, pull: never, network: none, resources "
        "for run run-1: tasks run on the host",
        "process backend ignores image busybox:latest for run run-2: tasks run on the host",
    ]


def test_make_backend_builds_by_name_and_rejects_unknown_names() -> None:
    backend = make_backend("process", owner="factory")
    assert isinstance(backend, ProcessBackend) and backend.owner == "factory"
    with pytest.raises(ConfigError) as info:
        make_backend("kubernetes", owner="factory")
    assert str(info.value) == (
        "backend: unknown backend 'kubernetes'; choose one of: docker, process"
    )
