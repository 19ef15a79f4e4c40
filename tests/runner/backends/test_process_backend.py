"""The process backend: what only host subprocesses do (the shared behaviour is
in ``test_backend_contract.py``)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from runner.backends import make_backend
from runner.backends.process_backend import ProcessBackend
from runner.errors import BackendError, ConfigError
from runner.model.flows import PullPolicy
from tests.polling import wait_until
from tests.runner.backends import backendkit as kit


@pytest.fixture
def backend(process_backend: ProcessBackend) -> ProcessBackend:
    return process_backend


def test_the_host_gives_only_path_home_and_lang(backend: ProcessBackend, tmp_path: Path) -> None:
    code, logs = kit.run(backend, kit.spec(tmp_path, 'echo "$LANG"'))
    assert (code, logs) == (0, f"{os.environ.get('LANG', 'C.UTF-8')}\n".encode())


def test_stdout_and_stderr_share_one_stream_in_order(
    backend: ProcessBackend, tmp_path: Path
) -> None:
    code, logs = kit.run(backend, kit.spec(tmp_path, "echo one; echo two >&2; echo three"))
    assert (code, logs) == (0, b"one\ntwo\nthree\n")


def test_kill_stops_the_whole_process_tree(backend: ProcessBackend, tmp_path: Path) -> None:
    handle = backend.start(kit.spec(tmp_path, "sleep 300 & echo $! > child.pid; wait"))
    pid_file = tmp_path / "repo" / "child.pid"
    child = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(),
                           kit.WAIT_SECONDS, "the task to write its child's pid"))
    assert backend.wait(handle, 0.2) is None
    backend.kill(handle)
    assert backend.wait(handle, kit.WAIT_SECONDS) == 128 + signal.SIGKILL
    wait_until(lambda: _gone(child), 5, f"process {child} to end")
    backend.kill(handle)  # idempotent


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (absent, or a zombie waiting for init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1]
    except FileNotFoundError:
        return True
    return state.startswith("Z")


def test_missing_program_is_a_backend_error(backend: ProcessBackend, tmp_path: Path) -> None:
    spec = kit.spec(tmp_path, "", argv=("/nonexistent/flowbot-shell", "-c", "true"))
    with pytest.raises(BackendError) as info:
        backend.start(spec)
    assert str(info.value).startswith("cannot start task build: ")


def test_ignored_settings_are_warned_once_per_run(
    backend: ProcessBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = kit.spec(tmp_path, "true", network="none", memory="64m", pull=PullPolicy.NEVER)
    with caplog.at_level(logging.WARNING, logger="runner.backends.process_backend"):
        backend.prepare(spec)
        backend.prepare(spec)
        backend.prepare(kit.spec(tmp_path, "true", run_id="run-2"))
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
        "backend: unknown backend 'kubernetes'; choose one of: docker, process, swarm"
    )
