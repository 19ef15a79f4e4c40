"""`flowbot demo` end to end on the real Docker engine: it finishes by itself."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bot.cli import build_parser, demo, main

pytestmark = pytest.mark.docker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_runs_the_whole_loop_and_ends(
    tmp_path: Path, busybox_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--data-dir", str(tmp_path / "demo"), "--port", str(_free_port()),
                 "--serve-seconds", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "status flowbot/validate on" in out and "success — 3 flows valid" in out
    assert "status flowbot/sync on" in out and "3 added" in out
    assert "pipeline: schedule hourly = '15 * * * *' (UTC)" in out
    assert "of pipeline: success" in out and "rows in region: 4 of 8" in out
    # the revenue flow's CSV arrives as a file input, read by Python at /inputs/data
    assert "'/run revenue data=@data/revenue-2026-11.csv'" in out
    assert "of revenue: success" in out and "| Total revenues: 3089.45" in out
    assert "of guarded-job: success" in out
    assert "/runs/" in out and "/schedules" in out and "The web UI: http://127.0.0.1:" in out


ROOT = Path(__file__).resolve().parents[2]
DEMO_SECONDS = 600  # the watchdog's limit: the demo itself ends at Ctrl-C


def test_the_demo_ends_with_the_ui_serving_at_the_printed_url(
    tmp_path: Path, busybox_image: str
) -> None:
    command = [sys.executable, "-m", "bot.cli", "demo", "--data-dir", str(tmp_path / "demo"),
               "--port", str(_free_port()), "--flow", "pipeline", "--serve-seconds", "3600"]
    demo = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watchdog = threading.Timer(DEMO_SECONDS, demo.kill)  # a hung demo fails, never hangs
    watchdog.start()
    assert demo.stdout is not None
    seen = []
    try:
        for line in demo.stdout:
            seen.append(line)
            if found := re.search(r"The web UI: (http://127\.0\.0\.1:\d+/) ", line):
                break
        else:
            pytest.fail("the demo ended without printing the UI's address:\n" + "".join(seen))
        flows = httpx.get(found.group(1))  # the demo is still serving: it waits for Ctrl-C
        assert flows.status_code == 200 and "pipeline" in flows.text
        [run_page] = re.findall(r"run page\s+(http://\S+)", "".join(seen))
        assert run_page.startswith(found.group(1) + "runs/")
        run = httpx.get(run_page)
        assert run.status_code == 200 and "success" in run.text
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = demo.communicate(timeout=120)
        watchdog.cancel()
    assert demo.returncode == 0, "".join(seen) + rest
    assert "Traceback" not in rest


ALERT = """id: alert
secrets: [HOOK]
tasks:
  - id: post
    image: busybox:latest
    network: none
    env: {HOOK_VALUE: "{{ secrets.HOOK }}"}
    commands: ['test "$HOOK_VALUE" = s3cret-hook && echo "the hook is set"']
"""


def _my_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository of one's own holding the alert flow; no FLOWBOT_* settings."""
    template = tmp_path / "my-repo"
    (template / "flows").mkdir(parents=True)
    (template / "flows" / "alert.yml").write_text(ALERT)
    for key in [k for k in os.environ if k.startswith("FLOWBOT_")]:
        monkeypatch.delenv(key)
    return template


def _demo(template: Path, tmp_path: Path) -> int:
    return main(["demo", "--template", str(template), "--data-dir", str(tmp_path / "demo"),
                 "--port", str(_free_port()), "--serve-seconds", "0"])


@pytest.mark.parametrize("source", ["environment", "secrets file"])
def test_a_template_of_ones_own_gets_its_secrets_and_its_name(
    tmp_path: Path, busybox_image: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, source: str,
) -> None:
    template = _my_repo(tmp_path, monkeypatch)
    if source == "environment":
        monkeypatch.setenv("FLOWBOT_SECRET_HOOK", "s3cret-hook")
    else:
        (tmp_path / "secrets.env").write_text("HOOK=s3cret-hook\n")
        monkeypatch.setenv("FLOWBOT_SECRETS_FILE", str(tmp_path / "secrets.env"))

    code = _demo(template, tmp_path)

    out = capsys.readouterr().out
    assert code == 0, out
    assert "of alert: success" in out and "| the hook is set" in out
    assert "/runs?repo=local/my-repo" in out and "repo-template" not in out
    assert "s3cret-hook" not in out
    assert out.count("\n4. ") == 1
    assert "The demo ends here and it goes away (--serve keeps it until Ctrl-C)." in out


def test_a_flow_missing_its_secret_is_not_run_and_the_demo_fails(
    tmp_path: Path, busybox_image: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = _my_repo(tmp_path, monkeypatch)

    code = _demo(template, tmp_path)

    captured = capsys.readouterr()
    assert code == 1
    assert "it needs secret(s) `HOOK`" in captured.out and "`FLOWBOT_SECRET_HOOK`" in captured.out
    assert "no run of alert was started" in captured.err


@pytest.mark.parametrize(
    ("given", "interactive", "seconds"),
    [
        ([], True, None),  # a terminal: until Ctrl-C
        ([], False, demo.SERVE_SECONDS),  # a script or CI: a few seconds, as it says
        (["--serve-seconds", "30"], True, 30.0),
        (["--serve-seconds", "0"], False, 0.0),
        (["--serve"], False, None),
    ],
)
def test_how_long_the_pages_stay_up(
    given: list[str], interactive: bool, seconds: float | None
) -> None:
    args = build_parser(["demo"]).parse_args(["demo", *given])
    assert demo.serve_seconds(args, interactive) == seconds
