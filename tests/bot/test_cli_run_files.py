"""`flowbot run -i data=@file` on the real Docker engine: the template's revenue
flow sums a local CSV at /inputs/data, and when it fails its errors task posts
a JSON message to the webhook kept as a secret; missing and oversized files are
refused naming the input, before anything runs."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.cli import main
from tests.bot.test_cli_run import _settings  # noqa: F401  (the same clean settings, autouse)

REVENUE = Path(__file__).parents[2] / "examples" / "repo-template" / "flows" / "revenue.yml"


@pytest.fixture
def webhook(docker_client: docker.DockerClient) -> Iterator[tuple[str, list[Any]]]:
    """A chat webhook on the host, reachable from task containers via the bridge gateway."""
    received: list[Any] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 0), Hook)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    config = docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    gateway = config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])
    try:
        yield f"http://{gateway}:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.docker
def test_the_revenue_flow_sums_a_local_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], python_image: str
) -> None:
    csv = tmp_path / "november.csv"
    csv.write_text("date,revenue\n2026-11-01,1.25\n2026-11-02,5.25\n")
    code = main(["run", str(REVENUE), "-i", f"data=@{csv}"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Total revenues: 6.50" in out


@pytest.mark.docker
def test_a_failing_revenue_run_posts_json_to_the_webhook_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], python_image: str,
    monkeypatch: pytest.MonkeyPatch, webhook: tuple[str, list[Any]],
) -> None:
    url, received = webhook
    monkeypatch.setenv("FLOWBOT_SECRET_ALERT_WEBHOOK_URL", url)
    csv = tmp_path / "broken.csv"
    csv.write_text("date,revenue\n2026-11-01,lots\n")
    code = main(["run", str(REVENUE), "-i", f"data=@{csv}"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "revenue is not a number: 'lots'" in out and "alert posted: HTTP 204" in out
    [message] = received
    assert message["text"].startswith("revenue failed in task sum: ")
    assert url not in out  # the secret is masked in the logs


@pytest.mark.parametrize(("setup", "problem"), [
    ("missing", "local file missing.csv: not a file"),
    ("large", "larger than 10 bytes"),
])
def test_a_missing_or_too_large_file_is_refused_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    setup: str, problem: str,
) -> None:
    monkeypatch.setenv("FLOWBOT_INPUT_FILE_MAX_BYTES", "10")
    (tmp_path / "large.csv").write_text("date,revenue\n" * 3)
    code = main(["run", str(REVENUE), "-i", f"data=@{tmp_path / (setup + '.csv')}"])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    assert "input 'data'" in captured.err or "data" in captured.err
    assert problem in captured.err
    assert "run " not in captured.out  # no run was recorded or started
