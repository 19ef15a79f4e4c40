"""`flowbot validate` through the real CLI entry point: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

TEMPLATE_FLOWS = Path(__file__).resolve().parents[2] / "examples" / "repo-template" / "flows"
GOOD = "id: good\ntasks:\n  - id: a\n    image: busybox:latest\n    commands: [echo]\n"
BAD = "id: bad\ntasks:\n  - id: a\n    image: busybox:latest\n    comand: [echo]\n"
SCHEDULED = """\
id: nightly
triggers:
  - id: at-two-thirty
    type: schedule
    cron: "30 2 * * *"
    timezone: Europe/Berlin
tasks:
  - {id: a, image: busybox, commands: [echo]}
"""


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flows").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valid_flows_exit_0_with_a_summary(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "flows" / "good.yml").write_text(GOOD)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "1 flow valid\n"


def test_errors_are_compiler_style_and_exit_1(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "flows" / "good.yml").write_text(GOOD)
    (repo / "flows" / "bad.yml").write_text(BAD)
    assert main(["validate", "flows"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "flows/bad.yml:3:5: error: tasks[0]: give either commands (a list of shell lines) "
        "or script, not neither",
        'flows/bad.yml:5:5: error: tasks[0]: unknown key "comand" (did you mean "commands"?)',
        "1 of 2 flows invalid",
    ]


def test_github_format_emits_workflow_commands(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "flows" / "bad.yml").write_text(BAD)
    assert main(["validate", "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "::error file=flows/bad.yml,line=5,col=5::"
        'tasks[0]: unknown key "comand" (did you mean "commands"?)'
    )
    assert lines[-1] == "1 of 1 flow invalid"


def test_json_format_is_machine_readable(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "flows" / "bad.yml").write_text(BAD)
    (repo / "flows" / "good.yml").write_text(GOOD)
    assert main(["validate", "--format", "json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    assert result["summary"] == "1 of 2 flows invalid"
    bad, good = result["files"]
    assert (bad["path"], bad["ok"], bad["flow"]) == ("flows/bad.yml", False, None)
    assert bad["diagnostics"][1] == {
        "path": "flows/bad.yml",
        "line": 5,
        "col": 5,
        "severity": "error",
        "message": 'tasks[0]: unknown key "comand" (did you mean "commands"?)',
    }
    assert (good["ok"], good["flow"], good["diagnostics"]) == (True, "good", [])


def test_plan_lists_next_five_fire_times_in_the_trigger_timezone(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "flows" / "nightly.yml").write_text(SCHEDULED)
    assert main(["validate", "--plan", "--now", "2026-03-27T00:00:00+00:00"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == [
        "plan: nightly / at-two-thirty: 30 2 * * * in Europe/Berlin",
        "  Fri 2026-03-27 02:30 CET (UTC 01:30)",
        "  Sat 2026-03-28 02:30 CET (UTC 01:30)",
        "  Sun 2026-03-29 03:00 CEST (UTC 01:00)",
        "  Mon 2026-03-30 02:30 CEST (UTC 00:30)",
        "  Tue 2026-03-31 02:30 CEST (UTC 00:30)",
        "1 flow valid, 2 warnings",
    ]
    assert out[0].startswith("flows/nightly.yml:5:11: warning: triggers[0].cron: 2026-03-29 02:30")


def test_plan_in_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "flows" / "nightly.yml").write_text(SCHEDULED)
    assert main(["validate", "--plan", "--format", "json", "--now", "2026-06-01T12:00"]) == 0
    [entry] = json.loads(capsys.readouterr().out)["plan"]
    assert entry["flow"] == "nightly" and entry["timezone"] == "Europe/Berlin"
    assert entry["next"][0] == "2026-06-02T02:30:00+02:00"
    assert len(entry["next"]) == 5


def test_missing_path_is_exit_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nope.yml"]) == 2
    assert capsys.readouterr().err == "flowbot validate: nope.yml: no such file or directory\n"


def test_no_flows_directory_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert "no flows/ directory here" in capsys.readouterr().err


def test_bad_now_and_bad_format_are_usage_errors(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--now", "yesterday"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--format", "xml"])
    assert exit_info.value.code == 2


def test_template_flows_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(TEMPLATE_FLOWS), "--plan"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("3 flows valid")
    assert "plan: revenue / daily: 0 10 * * * in Europe/Berlin" in out


def test_backend_names_what_that_backend_cannot_honour(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "flows" / "gpu.yml").write_text(GOOD.replace("id: good", "id: gpu\npool: gpu"))
    assert main(["validate"]) == 0  # backend-neutral by default
    capsys.readouterr()
    assert main(["validate", "--backend", "docker"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        'flows/gpu.yml:2:7: error: pool: "gpu" cannot be placed by the docker backend, which '
        'runs only the "default" pool; remove pool: (or set it to default), or run flowbot '
        "with FLOWBOT_BACKEND=swarm on nodes labelled flowbot.pool=gpu",
        "1 of 1 flow invalid",
    ]
    with pytest.raises(SystemExit):
        main(["validate", "--backend", "kubernetes"])
    assert "invalid choice: 'kubernetes'" in capsys.readouterr().err


def test_backend_checks_resources_against_the_operators_bounds(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWBOT_CONFIG", raising=False)
    monkeypatch.setenv("FLOWBOT_TASK_MAX_CPUS", "2")
    monkeypatch.setenv("FLOWBOT_TASK_MAX_MEMORY", "1g")
    hungry = GOOD.replace("id: good", "id: big").replace(
        "    commands:", "    resources: {cpus: 8, memory: 2g}\n    commands:")
    (repo / "flows" / "big.yml").write_text(hungry)
    assert main(["validate"]) == 0  # backend-neutral by default: no bounds
    capsys.readouterr()
    assert main(["validate", "--backend", "swarm"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "flows/big.yml:5:23: error: tasks[0].resources.cpus: asks for 8, above this flowbot's "
        "limit of 2 (FLOWBOT_TASK_MAX_CPUS); ask for at most 2, or have the operator raise "
        "FLOWBOT_TASK_MAX_CPUS",
        "flows/big.yml:5:34: error: tasks[0].resources.memory: asks for 2g, above this "
        "flowbot's limit of 1g (FLOWBOT_TASK_MAX_MEMORY); ask for at most 1g, or have the "
        "operator raise FLOWBOT_TASK_MAX_MEMORY",
        "1 of 1 flow invalid",
    ]
    assert main(["validate", "--backend", "process"]) == 0  # runs tasks unbounded: a warning
    assert "resources: not enforced by the process backend" in capsys.readouterr().out
    monkeypatch.setenv("FLOWBOT_TASK_MAX_CPUS", "8")
    monkeypatch.setenv("FLOWBOT_TASK_MAX_MEMORY", "2g")
    assert main(["validate", "--backend", "docker"]) == 0  # within the raised bounds
    assert capsys.readouterr().out.splitlines() == ["1 flow valid"]


def test_backend_with_malformed_bounds_is_a_usage_error(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWBOT_CONFIG", raising=False)
    monkeypatch.setenv("FLOWBOT_TASK_MAX_MEMORY", "lots")
    (repo / "flows" / "good.yml").write_text(GOOD)
    assert main(["validate", "--backend", "docker"]) == 2
    assert capsys.readouterr().err.strip() == (
        "flowbot validate: FLOWBOT_TASK_MAX_MEMORY: expected a memory size such as 512m or 2g "
        "(at least 6m), got 'lots'")
    assert main(["validate", "--backend", "process"]) == 0  # bounds it never applies
