"""`flowbot run` end to end on the real Docker engine: the template flows,
validation and input errors, streamed logs, the summary, and Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from bot.cli import main
from runner.backends.base import LABEL_OWNER
from runner.clock import SystemClock
from runner.running.service import installation_for
from runner.state.db import connect
from runner.state.store import RunStore

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "examples" / "repo-template"
_MAIN = "import sys; from bot.cli import main; sys.exit(main())"
TEMPLATE_FLOWS = sorted((TEMPLATE / "flows").glob("*.yml"))


@pytest.fixture(autouse=True)
def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FLOWBOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FLOWBOT_DATA_DIR", str(tmp_path / "data"))
    # the revenue flow's errors task posts there only when a run fails
    monkeypatch.setenv("FLOWBOT_SECRET_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nobody")


def test_the_template_has_flows_to_run() -> None:
    assert [p.name for p in TEMPLATE_FLOWS] != []


@pytest.mark.docker
@pytest.mark.parametrize("flow_file", TEMPLATE_FLOWS, ids=lambda p: p.stem)
def test_each_template_flow_runs_successfully(
    flow_file: Path, capsys: pytest.CaptureFixture[str], busybox_image: str, python_image: str
) -> None:
    code = main(["run", str(flow_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^task +state +duration +exit +attempts$", out, re.M)
    assert re.search(r"^run \w+ success$", out, re.M)


@pytest.mark.docker
def test_a_failing_run_streams_prefixed_logs_runs_errors_tasks_and_exits_1(
    capsys: pytest.CaptureFixture[str], busybox_image: str
) -> None:
    code = main(["run", str(TEMPLATE / "flows" / "guarded-job.yml"), "-i", "fail=true"])
    out = capsys.readouterr().out
    assert code == 1
    assert "prepare        | preparing" in out
    assert "report-failure | flow guarded-job run" in out
    assert "--> work failed" in out
    summary = out[re.search(r"^task +state", out, re.M).start():]  # type: ignore[union-attr]
    assert re.search(r"^report-failure \(errors\) +success", summary, re.M)
    assert 'failed: task "work" failed: exit code 1' in out


def test_an_invalid_flow_prints_positioned_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "flows" / "bad.yml"
    bad.parent.mkdir()
    bad.write_text("id: bad\ntasks:\n  - id: t\n    image: busybox\n    commandz: [true]\n")
    assert main(["run", str(bad)]) == 1
    assert f"{bad}:5" in capsys.readouterr().err


def test_bad_inputs_are_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str]
) -> None:
    flow = str(TEMPLATE / "flows" / "pipeline.yml")
    assert main(["run", flow, "-i", "region=mars"]) == 2
    assert 'input "region"' in capsys.readouterr().err
    assert main(["run", flow, "-i", "no-equals-sign"]) == 2
    assert capsys.readouterr().err == "flowbot run: -i 'no-equals-sign': expected key=value\n"


@pytest.mark.docker
def test_ctrl_c_cancels_the_run_and_removes_its_containers(
    tmp_path: Path, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    flow = tmp_path / "flows" / "sleepy.yml"
    flow.parent.mkdir()
    flow.write_text("id: sleepy\ntasks:\n  - id: nap\n    image: busybox:latest\n"
                    "    commands: ['echo napping', 'sleep 60']\n")
    data = tmp_path / "data"
    env = {**os.environ, "FLOWBOT_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-c", _MAIN, "run", str(flow)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"napping" not in seen and time.monotonic() < deadline:
        seen += child.stdout.readline()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 130, (seen + out).decode()
    assert b"nap   cancelled" in out
    owner = installation_for(f"sqlite:///{data.resolve() / 'flowbot.db'}")  # serve's label
    label = {"label": f"{LABEL_OWNER}={owner}"}
    assert docker_client.containers.list(all=True, filters=label) == []


def test_the_process_backend_runs_a_flow_without_docker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guarded = TEMPLATE / "flows" / "guarded-job.yml"
    # the process backend cannot take a task's network away: such a flow is refused
    assert main(["run", str(guarded), "--backend", "process"]) == 1
    assert 'network: "none" cannot be honoured by the process backend' in (
        capsys.readouterr().err)
    open_flow = tmp_path / "flows" / "guarded-job.yml"
    open_flow.parent.mkdir()
    open_flow.write_text(guarded.read_text().replace("    network: none\n", ""))
    flow = str(open_flow)
    assert main(["run", flow, "--backend", "process"]) == 0
    assert re.search(r"^work +success", capsys.readouterr().out, re.M)
    assert main(["run", flow, "--backend", "process", "-i", "fail=yes"]) == 1
    out = capsys.readouterr().out
    assert "report-failure | reason: task \"work\" failed: exit code 1" in out


def test_the_operators_bounds_apply_to_local_runs_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flows" / "big.yml"
    flow.parent.mkdir()
    flow.write_text("id: big\ntasks:\n  - id: crunch\n    image: busybox:latest\n"
                    "    resources: {cpus: 3}\n    commands: [\"true\"]\n")
    monkeypatch.setenv("FLOWBOT_TASK_MAX_CPUS", "2")
    assert main(["run", str(flow)]) == 1
    err = capsys.readouterr().err
    assert "resources.cpus: 3, above this flowbot's limit of 2 (FLOWBOT_TASK_MAX_CPUS)" in err


def test_a_missing_secret_is_refused_and_records_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flows" / "alert.yml"
    flow.parent.mkdir()
    flow.write_text("id: alert\nsecrets: [WEBHOOK_URL]\ntasks:\n"
                    "  - {id: post, image: busybox:latest, commands: ['true']}\n")
    assert main(["run", str(flow), "--backend", "process"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('flowbot run: flow "alert" declares secret(s) WEBHOOK_URL but')
    assert "set FLOWBOT_SECRET_<NAME>" in err
    store = RunStore(connect(f"sqlite:///{tmp_path / 'data' / 'flowbot.db'}"), SystemClock())
    assert store.list_runs() == []  # refused before a run (and its id) was recorded


def test_a_working_tree_over_the_byte_bound_is_refused_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flows" / "small.yml"
    flow.parent.mkdir()
    flow.write_text("id: small\ntasks:\n  - {id: t, image: busybox:latest, commands: ['true']}\n")
    (tmp_path / "blob.bin").write_bytes(b"x" * 4096)  # the tree is not at a commit: copied
    monkeypatch.setenv("FLOWBOT_WORKSPACE_MAX_BYTES", "1024")
    assert main(["run", str(flow), "--backend", "process"]) == 1
    err = capsys.readouterr().err
    assert f"the repository at {tmp_path} is larger than FLOWBOT_WORKSPACE_MAX_BYTES " \
           "(1 KiB), the most a run's copy of it may hold" in err
    assert "have the operator raise FLOWBOT_WORKSPACE_MAX_BYTES" in err
    assert list((tmp_path / "data" / "work").iterdir()) == []  # no partial copy left
