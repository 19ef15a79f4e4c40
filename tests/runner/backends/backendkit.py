"""What every backend test builds: a task spec over ``tmp_path`` (workspace
``repo/``, output file ``outputs/build.1``) and one run of it to the end."""

from __future__ import annotations

from pathlib import Path

from runner.backends.base import Backend, TaskSpec
from runner.offline_images import BUSYBOX

WAIT_SECONDS = 60  # a task that should end has this long to do so


def spec(tmp_path: Path, script: str, image: str = BUSYBOX, **overrides: object) -> TaskSpec:
    """``sh -ec script`` with ``GREETING=hello``, in ``tmp_path/repo``."""
    workspace = tmp_path / "repo"
    workspace.mkdir(exist_ok=True)
    output = tmp_path / "outputs" / "build.1"
    output.parent.mkdir(exist_ok=True)
    output.write_bytes(b"")
    fields: dict[str, object] = {
        "run_id": "run-1", "task_id": "build", "attempt": 1, "image": image,
        "argv": ("sh", "-ec", script), "env": {"GREETING": "hello"},
        "workspace": workspace, "workdir": "/workspace", "output_file": output,
    }
    fields.update(overrides)
    return TaskSpec(**fields)  # type: ignore[arg-type]


def run(backend: Backend, task: TaskSpec) -> tuple[int | None, bytes]:
    """Prepare and start ``task``, read its logs to the end; (exit code, logs)."""
    backend.prepare(task)
    handle = backend.start(task)
    logs = b"".join(backend.logs(handle))
    return backend.wait(handle, WAIT_SECONDS), logs
