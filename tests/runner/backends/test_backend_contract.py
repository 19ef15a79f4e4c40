"""What every backend promises the engine (``runner.backends.base.Backend``),
checked on each (process, docker, and swarm on a real single-node swarm): exit
codes, environment, working directory, the outputs file, logs while a task
runs, waiting with a timeout, kill, existing and remove."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runner.backends.docker_backend import DockerBackend
from runner.backends.process_backend import ProcessBackend
from runner.backends.swarm_backend import SwarmBackend
from runner.errors import BackendError
from tests.runner.backends.backendkit import WAIT_SECONDS, run, spec

Backend = ProcessBackend | DockerBackend | SwarmBackend
KILLED = 137  # 128 + SIGKILL, as a shell reports it


@pytest.fixture(params=["process", pytest.param("docker", marks=pytest.mark.docker),
                        pytest.param("swarm", marks=[pytest.mark.docker, pytest.mark.swarm])])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")  # type: ignore[no-any-return]


def test_task_runs_in_its_workspace_with_env_output_and_exit_code(
    backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "data.csv").write_text("a,b\n")
    script = 'echo "$GREETING"; cat data.csv; echo rows=1 >> "$FLOWBOT_OUTPUT"; exit 4'
    code, logs = run(backend, spec(tmp_path, script))
    assert code == 4
    assert logs == b"hello\na,b\n"
    assert (tmp_path / "outputs" / "build.1").read_text() == "rows=1\n"


def test_stderr_is_part_of_the_logs(backend: Backend, tmp_path: Path) -> None:
    assert run(backend, spec(tmp_path, "echo oops >&2")) == (0, b"oops\n")


def test_environment_is_the_tasks_not_the_hosts(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWBOT_GITHUB_TOKEN", "not-for-tasks")
    code, logs = run(backend, spec(tmp_path, "env | cut -d= -f1 | sort"))
    assert code == 0
    names = set(logs.decode().split())
    assert "FLOWBOT_GITHUB_TOKEN" not in names
    assert {"PATH", "HOME", "GREETING", "FLOWBOT_OUTPUT"} <= names


def test_logs_stream_while_the_task_runs(backend: Backend, tmp_path: Path) -> None:
    task = spec(tmp_path, "echo first; while [ ! -e gate ]; do sleep 0.05; done; echo last")
    handle = backend.start(task)
    chunks = backend.logs(handle)
    assert next(chunks) == b"first\n"  # the task is blocked on the gate at this point
    assert backend.wait(handle, 0.1) is None
    (tmp_path / "repo" / "gate").touch()
    assert b"".join(chunks) == b"last\n"
    assert backend.wait(handle, WAIT_SECONDS) == 0


def test_wait_times_out_and_kill_stops_the_task(backend: Backend, tmp_path: Path) -> None:
    handle = backend.start(spec(tmp_path, "sleep 300"))
    assert backend.wait(handle, 0.5) is None
    backend.kill(handle)
    assert backend.wait(handle, WAIT_SECONDS) == KILLED
    backend.kill(handle)  # idempotent once stopped


def test_kill_and_wait_from_another_thread(backend: Backend, tmp_path: Path) -> None:
    handle = backend.start(spec(tmp_path, "sleep 300"))
    codes: list[int | None] = []
    waiter = threading.Thread(target=lambda: codes.append(backend.wait(handle, None)))
    waiter.start()
    backend.kill(handle)
    waiter.join(WAIT_SECONDS)
    assert codes == [KILLED]


def test_stray_children_end_with_the_main_process(backend: Backend, tmp_path: Path) -> None:
    # The background sleep keeps the log pipe open; logs must still end.
    assert run(backend, spec(tmp_path, "sleep 300 & echo started")) == (0, b"started\n")


def test_existing_lists_this_owners_attempts(backend: Backend, tmp_path: Path) -> None:
    done = backend.start(spec(tmp_path, "exit 5"))
    assert backend.wait(done, WAIT_SECONDS) == 5
    running = backend.start(spec(tmp_path, "sleep 300", task_id="slow", attempt=2))
    found = {e.handle: e for e in backend.existing(backend.owner)}
    assert set(found) == {done, running}
    assert (found[done].run_id, found[done].task_id, found[done].attempt) == ("run-1", "build", 1)
    assert (found[done].running, found[done].exit_code) == (False, 5)
    assert (found[running].task_id, found[running].attempt) == ("slow", 2)
    assert (found[running].running, found[running].exit_code) == (True, None)
    assert backend.existing("somebody-else-entirely") == []


def test_remove_forgets_the_attempt_and_is_idempotent(backend: Backend, tmp_path: Path) -> None:
    done = backend.start(spec(tmp_path, "exit 2"))
    assert backend.wait(done, WAIT_SECONDS) == 2
    running = backend.start(spec(tmp_path, "sleep 300", task_id="slow"))
    backend.remove(running)
    backend.remove(running)
    backend.kill(running)
    assert [e.handle for e in backend.existing(backend.owner)] == [done]
    assert list(backend.logs(running)) == []
    with pytest.raises(BackendError):
        backend.wait(running, 1)
