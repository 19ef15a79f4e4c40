"""`flowbot serve` refuses settings it cannot use before it writes anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVE = "import sys; from bot.cli import main; sys.exit(main(['serve']))"


def _serve(cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBOT_")}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root
    return subprocess.run([sys.executable, "-c", SERVE], cwd=cwd, env={**env, **settings},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "FLOWBOT_WEBHOOK_SECRET is not set"),
        ({"FLOWBOT_WEBHOOK_SECRET": "s3cret"},
         "FLOWBOT_GITHUB_TOKEN: set FLOWBOT_GITHUB_TOKEN, or FLOWBOT_GITHUB_APP_ID"),
        ({"FLOWBOT_WEBHOOK_SECRET": "s3cret", "FLOWBOT_GITHUB_TOKEN": "t",
          "FLOWBOT_SECRETS_FILE": "missing.env"}, "FLOWBOT_SECRETS_FILE"),
        ({"FLOWBOT_WEBHOOK_SECRET": "s3cret", "FLOWBOT_GITHUB_TOKEN": "t",
          "FLOWBOT_TASK_CPUS": "8"}, "FLOWBOT_TASK_CPUS"),
    ],
)
def test_missing_or_bad_settings_exit_2_and_create_no_data_dir(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    done = _serve(tmp_path, **settings)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("flowbot serve: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no .flowbot/, no database


def test_serve_says_what_its_backend_leaves_out_of_task_isolation() -> None:
    from bot.cli.serve import isolation_note

    assert isolation_note("docker") is None  # everything the engine offers
    assert isolation_note("swarm") == (
        "flowbot serve: the swarm backend runs tasks without a pids limit "
        "(FLOWBOT_TASK_PIDS) or no-new-privileges; flows asking for what it cannot honour "
        "(network: none, a pool it cannot place) are refused. See docs/scaling.md for what "
        "each backend isolates.")
    process = isolation_note("process")
    assert process is not None and process.startswith(
        "flowbot serve: the process backend runs tasks without a pids limit (FLOWBOT_TASK_PIDS), "
        "no-new-privileges, a read-only root filesystem or cpu and memory limits;")
