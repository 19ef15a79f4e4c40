"""deploy/compose.yaml for real: deploy/build-image builds flowbot's image and the
PostgreSQL image offline, Debian's docker-compose starts PostgreSQL and two flowbot
replicas on one temporary data dir, and both answer and share one database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from bot.intake.app import sign
from tests.conftest import IN_CI
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SECRET = "compose-test-webhook-secret-0123456789abcdef"
API_TOKEN = "compose-test-api-token"

pytestmark = [pytest.mark.compose, pytest.mark.docker]


def _compose_binary() -> str:
    """Debian's docker-compose; installed here with apt when this machine may."""
    found = shutil.which("docker-compose")
    if found:
        return found
    reason = "Debian's docker-compose is not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        done = subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"],
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("docker-compose")
        if found:
            return found
        reason += f" and apt-get could not install it: {done.stderr.strip()[-300:]}"
    else:
        reason += " and this user cannot install it (run ./dev test as root, or apt-get " \
                  "install docker-compose)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    compose: list[str]
    env: dict[str, str]
    urls: list[str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.compose, *args], env=self.env, capture_output=True,
                              text=True, check=False, timeout=300)

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail", "40").stdout[-6000:]


@pytest.fixture
def deployment(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Deployment]:
    binary = _compose_binary()
    tag = uuid.uuid4().hex[:8]
    images = [f"flowbot:test-{tag}", f"flowbot-postgres:test-{tag}"]
    built = subprocess.run([str(ROOT / "deploy" / "build-image"), *images], cwd=ROOT,
                           capture_output=True, text=True, check=False, timeout=600)
    try:
        assert built.returncode == 0, built.stderr[-3000:]
        data = tmp_path / "data"
        data.mkdir()
        uid = "10001" if os.geteuid() == 0 else str(os.getuid())
        if os.geteuid() == 0:
            os.chown(data, 10001, 10001)
        env = {
            **os.environ,
            "FLOWBOT_IMAGE": images[0], "FLOWBOT_POSTGRES_IMAGE": images[1],
            "FLOWBOT_UID": uid, "FLOWBOT_GID": uid if uid != "10001" else "10001",
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "FLOWBOT_DATA_DIR": str(data),
            "POSTGRES_PASSWORD": uuid.uuid4().hex,
            "FLOWBOT_WEBHOOK_SECRET": SECRET,
            "FLOWBOT_GITHUB_TOKEN": "compose-test-token",
            "FLOWBOT_API_TOKEN": API_TOKEN,
            "FLOWBOT_PORT_1": str(_free_port()), "FLOWBOT_PORT_2": str(_free_port()),
        }
        urls = [f"http://127.0.0.1:{env['FLOWBOT_PORT_1']}",
                f"http://127.0.0.1:{env['FLOWBOT_PORT_2']}"]
        project = f"flowbottest{tag}"
        found = Deployment([binary, "-p", project, "-f", str(COMPOSE)], env, urls)
        try:
            yield found
        finally:
            down = found.run("down", "-v", "--remove-orphans")
            assert down.returncode == 0, down.stderr[-2000:]
            left = docker_client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={project}"})
            assert left == []
            assert docker_client.volumes.list(
                filters={"label": f"com.docker.compose.project={project}"}) == []
    finally:
        for image in images:
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ping(url: str, delivery: str) -> httpx.Response:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    return httpx.post(f"{url}/webhook", content=body, timeout=10, headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(SECRET, body), "Content-Type": "application/json"})


def test_two_replicas_on_one_postgres_share_their_state(deployment: Deployment) -> None:
    up = deployment.run("up", "-d")
    assert up.returncode == 0, up.stderr[-3000:]
    for url in deployment.urls:
        wait_until(lambda url=url: _healthy(url), 120,  # type: ignore[misc]
                   f"{url}/healthz to answer 200\n{deployment.logs()}")
    wait_until(lambda: deployment.run("ps").stdout.count("(healthy)") == 3, 120,
               "the images' own health checks to pass in all three containers")

    # a ping through each replica is recorded once, in the one database: the same
    # delivery sent to the other replica is a duplicate there
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert _ping(deployment.urls[0], first).status_code == 202
    assert _ping(deployment.urls[1], second).status_code == 202
    again = _ping(deployment.urls[1], first)
    assert (again.status_code, again.json()) == (200, {"message": "duplicate"})
    again = _ping(deployment.urls[0], second)
    assert (again.status_code, again.json()) == (200, {"message": "duplicate"})
    bad = httpx.post(f"{deployment.urls[1]}/webhook", content=b"{}", timeout=10,
                     headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "x",
                              "X-Hub-Signature-256": "sha256=00"})
    assert bad.status_code == 401

    # the API answers from either replica to the token (not loopback: the port is mapped)
    for url in deployment.urls:
        assert httpx.get(f"{url}/api/runs", timeout=10).status_code == 403
        runs = httpx.get(f"{url}/api/runs", timeout=10,
                         headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert runs.status_code == 200, runs.text

    # flowbot doctor inside a replica: non-root, it reaches PostgreSQL and, through the
    # docker group id it was given, the engine's socket
    doctor = deployment.run("exec", "-T", "flowbot-2", "flowbot", "doctor", "--timeout", "2")
    lines = doctor.stdout.splitlines()
    assert any(text.startswith("ok       database: PostgreSQL") for text in lines), lines
    assert any(text.startswith("ok       docker: Docker Engine") for text in lines), lines
    assert "Traceback" not in doctor.stdout + doctor.stderr

    # both replicas came up the first time: the one that migrated second waited for
    # the other's migration instead of failing and being restarted
    for service in ("flowbot-1", "flowbot-2"):
        container = deployment.run("ps", "-q", service).stdout.strip()
        restarts = subprocess.run(["docker", "inspect", "-f", "{{.RestartCount}}", container],
                                  capture_output=True, text=True, check=True).stdout.strip()
        assert restarts == "0", f"{service} restarted {restarts} times\n{deployment.logs()}"
