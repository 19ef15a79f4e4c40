"""docs/first-flow.md works as written: its flow and data, copied out of the page
into a real git repository with the template's .gitignore, validate with the plan
the page shows and run in Docker with the secret masked; the local run's files
stay out of `git status`."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "first-flow.md"
pytestmark = pytest.mark.docker


def _block(language: str, after: str = "") -> str:
    """The first ```language block of the page after the text ``after``."""
    text = DOC.read_text()
    found = re.search(rf"```{language}\n(.*?)```", text[text.index(after):], re.S)
    assert found, f"no {language} block after {after!r} in {DOC.name}"
    return found.group(1)


def _flowbot(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBOT_")}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=repo, text=True,
                          capture_output=True, env={**clean, "PYTHONPATH": str(ROOT), **env},
                          timeout=300, check=False)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding the page's flow and data, and the template's .gitignore."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "sales.csv").write_text(_block("csv"))
    (tmp_path / "flows" / "sales-total.yml").write_text(_block("yaml"))
    shutil.copy(ROOT / "examples" / "repo-template" / ".gitignore", tmp_path / ".gitignore")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.invalid",
         "commit", "-q", "-m", "first flow")
    return tmp_path


def test_validate_plan_prints_what_the_page_shows(repo: Path) -> None:
    shown = _block("console", "## 2.").splitlines()
    assert shown[0] == "$ flowbot validate --plan"
    done = _flowbot(repo, "validate", "--plan", "--now", "2026-11-30T08:00:00+00:00")
    assert (done.returncode, done.stdout.splitlines()) == (0, shown[1:])


def test_the_run_masks_its_secret_keeps_its_log_and_leaves_git_status_clean(
    repo: Path, busybox_image: str
) -> None:
    shown = _block("console", "## 3.")
    command = shown.splitlines()[0]
    assert command.startswith("$ FLOWBOT_SECRET_REPORT_TOKEN=tok-123456 flowbot run ")
    args = command.split("flowbot run ")[1].split()
    done = _flowbot(repo, "run", *args, FLOWBOT_SECRET_REPORT_TOKEN="tok-123456")
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("total  | Total revenue: 219.75 USD", "report | Reporting 219.75 (token: ***)"):
        assert line in shown.splitlines() and line in done.stdout.splitlines()
    assert "tok-123456" not in done.stdout + done.stderr
    run_id = re.match(r"run (\w+): ", done.stdout)
    assert run_id
    log = repo / ".flowbot" / "logs" / run_id.group(1) / "total.1.log"
    assert log.read_text() == "Total revenue: 219.75 USD\n"
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_without_the_secret_nothing_runs_and_the_message_says_what_to_set(repo: Path) -> None:
    done = _flowbot(repo, "run", "flows/sales-total.yml")
    assert done.returncode == 2
    assert "REPORT_TOKEN" in done.stderr and "FLOWBOT_SECRET_<NAME>" in done.stderr
    assert not (repo / ".flowbot" / "logs").exists()


def test_the_demo_of_ones_own_repository_shows_the_run_and_stays_out_of_git(
    repo: Path, busybox_image: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    text = DOC.read_text()
    assert ("flowbot demo --template . --flow sales-total --inputs currency=USD") in text
    done = _flowbot(repo, "demo", "--template", ".", "--flow", "sales-total", "--inputs",
                    "currency=USD", "--port", port, "--serve-seconds", "0",
                    FLOWBOT_SECRET_REPORT_TOKEN="tok-123456")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Run " in done.stdout and "of sales-total: success" in done.stdout
    assert "/runs?repo=local/" + repo.name in done.stdout
    assert "tok-123456" not in done.stdout
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""
