"""`flowbot demo` end to end on the real Docker engine: it finishes by itself."""

import socket
from pathlib import Path

import pytest

from bot.cli import main

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
    assert "of daily-revenue: success" in out and "total revenue: 2709.19" in out
    assert "of guarded-job: success" in out
    assert "/runs/" in out and "/api/schedules" in out
