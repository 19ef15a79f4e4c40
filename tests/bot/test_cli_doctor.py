"""`flowbot doctor` as a real process against the fake GitHub over HTTP, the real
PostgreSQL and the real Docker engine: all ok, then each kind of problem."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest

from runner.state.db import connect
from tests.fakegithub.fixtures import FAKE_LOGIN, FAKE_TOKEN, app_key_pair
from tests.fakegithub.server import FakeGitHub

ROOT = Path(__file__).resolve().parents[2]
SECRET = "doctor-test-webhook-secret-0123456789"

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


class _Health(BaseHTTPRequestHandler):
    """Stands in for the public address (a proxy before flowbot): /healthz answers 200."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status = 200 if self.path == "/healthz" else 404
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def public_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(tmp_path: Path, fake_github: FakeGitHub, postgres_url: str, public_url: str,
        docker_client: docker.DockerClient) -> dict[str, str]:
    connect(postgres_url).dispose()  # migrated, as flowbot serve leaves it
    fake_github.state.tokens[FAKE_TOKEN].scopes = "repo, workflow"
    base = {key: value for key, value in os.environ.items() if not key.startswith("FLOWBOT_")}
    return base | {
        "FLOWBOT_DATA_DIR": str(tmp_path / "data"), "FLOWBOT_DATABASE_URL": postgres_url,
        "FLOWBOT_GITHUB_API_URL": fake_github.url, "FLOWBOT_GITHUB_TOKEN": FAKE_TOKEN,
        "FLOWBOT_WEBHOOK_SECRET": SECRET, "FLOWBOT_PUBLIC_URL": public_url,
    }


def doctor(env: dict[str, str]) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-m", "bot.cli", "doctor", "--timeout", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stdout + done.stderr
    return done.returncode, done.stdout.splitlines(), done.stderr


def line(lines: list[str], name: str) -> str:
    return next(text for text in lines if text.split(None, 1)[1].startswith(f"{name}:"))


def test_all_ok_with_a_token_on_postgres_and_docker(env: dict[str, str]) -> None:
    code, lines, err = doctor(env)
    assert code == 0, lines
    assert [text.split()[0] for text in lines] == ["ok"] * 5
    database = line(lines, "database")
    assert "PostgreSQL" in database and "migrations at head" in database
    assert "Docker Engine" in line(lines, "docker")
    assert f"token of {FAKE_LOGIN}" in line(lines, "github")
    assert "repo, workflow" in line(lines, "github")
    assert "all checks passed" in err
    assert FAKE_TOKEN not in "\n".join(lines) + err and SECRET not in "\n".join(lines) + err


@pytest.mark.swarm
def test_the_swarm_backend_needs_a_swarm_manager(env: dict[str, str],
                                                 swarm_manager: docker.DockerClient) -> None:
    code, lines, _ = doctor(env | {"FLOWBOT_BACKEND": "swarm"})
    assert code == 0, lines
    assert "swarm manager of 1 node(s)" in line(lines, "docker")


def test_a_github_app_with_and_without_installations(env: dict[str, str],
                                                     fake_github: FakeGitHub) -> None:
    private, public = app_key_pair()
    fake_github.add_app(4242, public, slug="flowbot")
    app_env = env | {"FLOWBOT_GITHUB_TOKEN": "", "FLOWBOT_GITHUB_APP_ID": "4242",
                     "FLOWBOT_GITHUB_PRIVATE_KEY": private}
    code, lines, _ = doctor(app_env)
    assert code == 1
    assert line(lines, "github").startswith("problem")
    assert "no installations" in line(lines, "github")
    fake_github.add_installation(4242, 77)
    code, lines, _ = doctor(app_env)
    assert code == 0, lines
    assert "GitHub App flowbot" in line(lines, "github") and "77" in line(lines, "github")
    assert "BEGIN PRIVATE KEY" not in "\n".join(lines)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once closed


def test_bad_token_missing_secret_unreachable_database_engine_and_url(env: dict[str, str]) -> None:
    port = _closed_port()
    broken = env | {
        "FLOWBOT_GITHUB_TOKEN": "ghp_wrong0000000000000000000000000000000",
        "FLOWBOT_WEBHOOK_SECRET": "",
        "FLOWBOT_DATABASE_URL": f"postgresql+psycopg://flowbot:pw-hidden@127.0.0.1:{port}/x",
        "FLOWBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
    }
    code, lines, err = doctor(broken)
    assert code == 1
    assert "5 problem(s) found" in err
    database = line(lines, "database")
    assert database.startswith("problem") and "cannot connect" in database
    assert "FLOWBOT_DATABASE_URL" in database and "pw-hidden" not in database
    github = line(lines, "github")
    assert github.startswith("problem") and "401" in github and "FLOWBOT_GITHUB_TOKEN" in github
    assert "ghp_wrong" not in "\n".join(lines)
    secret = line(lines, "webhook secret")
    assert secret.startswith("problem") and "FLOWBOT_WEBHOOK_SECRET is not set" in secret
    public = line(lines, "public url")
    assert public.startswith("problem") and "/healthz does not answer" in public
    engine = line(lines, "docker")
    assert engine.startswith("problem") and "does not answer" in engine and "DOCKER_HOST" in engine


def test_a_token_without_repo_scope_a_short_secret_and_a_relative_url(
        env: dict[str, str], fake_github: FakeGitHub) -> None:
    fake_github.state.tokens[FAKE_TOKEN].scopes = "read:org"
    code, lines, _ = doctor(env | {"FLOWBOT_WEBHOOK_SECRET": "short",
                                   "FLOWBOT_PUBLIC_URL": "flowbot.example.com"})
    assert code == 1
    assert "not repo" in line(lines, "github") and "read:org" in line(lines, "github")
    assert "5 characters" in line(lines, "webhook secret")
    assert "not an absolute http(s) URL" in line(lines, "public url")


def test_sqlite_is_noted_as_one_process_and_bad_settings_are_a_problem(
        env: dict[str, str]) -> None:
    code, lines, _ = doctor(env | {"FLOWBOT_DATABASE_URL": ""})
    assert code == 0, lines
    assert "SQLite" in line(lines, "database") and "one process" in line(lines, "database")
    code, lines, _ = doctor(env | {"FLOWBOT_PORT": "eighty"})
    assert code == 1
    assert lines == ["problem  settings: FLOWBOT_PORT: expected a whole number, got 'eighty'"]
