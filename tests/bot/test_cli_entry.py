"""The `flowbot` entry point: each subcommand imports only what it uses, and
`--version` comes from the package metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# a valid flow using what validation checks beyond the schema: a cron in a timezone, inputs
FLOW = """id: nightly
inputs:
  region: {type: choice, choices: [eu, us], default: eu}
triggers:
  - {id: at-six, type: schedule, cron: "0 6 * * *", timezone: Europe/Berlin}
tasks:
  - {id: a, image: busybox:latest, commands: ['echo "{{ inputs.region }}"']}
"""
HEAVY = ("sqlalchemy", "docker", "fastapi", "uvicorn", "alembic", "github", "git")
# Runs `flowbot validate FILE` in a fresh interpreter, then names the heavy modules it loaded.
PROBE = """
import sys
from bot.cli import main
code = main(["validate", sys.argv[1]])
print("loaded:", *sorted(m for m in sys.argv[2:] if m in sys.modules))
sys.exit(code)
"""


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


def test_validate_imports_no_database_docker_or_web_stack(tmp_path: Path) -> None:
    (tmp_path / "nightly.yml").write_text(FLOW)
    done = _python("-c", PROBE, str(tmp_path / "nightly.yml"), *HEAVY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 flow valid", "loaded:"]


def test_an_invalid_file_is_explained_without_them_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("id: bad\ntasks:\n  - id: a\n    commands: [echo]\n")
    done = _python("-c", PROBE, str(bad), *HEAVY)
    assert done.returncode == 1
    assert 'missing required key "image"' in done.stdout
    assert done.stdout.splitlines()[-1] == "loaded:"


def test_version_comes_from_the_package_metadata() -> None:
    done = _python("-m", "bot.cli", "--version")
    assert (done.returncode, done.stdout) == (0, f"flowbot {version('flowbot')}\n")


def test_help_lists_every_command_without_importing_them() -> None:
    done = _python("-m", "bot.cli", "--help")
    assert done.returncode == 0
    for command in ("validate", "run", "serve", "schedules", "demo"):
        assert f"    {command} " in done.stdout


def test_run_help_describes_the_command_and_validate_help_its_exit_codes() -> None:
    run = _python("-m", "bot.cli", "run", "--help").stdout
    assert "Run FLOW_FILE on this machine exactly as the bot would" in run
    assert "exit codes: 0 the run succeeded, 1 it failed" in run
    validate = " ".join(_python("-m", "bot.cli", "validate", "--help").stdout.split())
    assert "exit codes: 0 every file valid (warnings allowed), 1 some file invalid, 2 usage" in (
        validate
    )
