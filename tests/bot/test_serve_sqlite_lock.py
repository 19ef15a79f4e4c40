"""SQLite serves one process: a second ``flowbot serve`` on the same data dir is
refused with a message naming the database file and PostgreSQL for replicas,
while the first goes on serving; after the first is killed, a new one starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.bot.e2e_support import SECRET
from tests.bot.serve_kit import SERVE, Served, served  # noqa: F401  (the fixture)
from tests.fakegithub.fixtures import FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub


def test_a_second_serve_on_one_sqlite_data_dir_is_refused(
    tmp_path: Path, fake_github: FakeGitHub, served: list[Served],  # noqa: F811
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first = Served(data_dir, fake_github)
    served.append(first)
    env = {**os.environ, "FLOWBOT_DATA_DIR": str(data_dir), "FLOWBOT_WEBHOOK_SECRET": SECRET,
           "FLOWBOT_GITHUB_API_URL": fake_github.url, "FLOWBOT_GITHUB_TOKEN": FAKE_TOKEN,
           "FLOWBOT_HOST": "127.0.0.1", "FLOWBOT_PORT": "0"}
    env.pop("FLOWBOT_DATABASE_URL", None)

    second = subprocess.run([sys.executable, "-c", SERVE], env=env, capture_output=True,
                            text=True, timeout=120)

    database = (data_dir / "flowbot.db").resolve()
    assert second.returncode == 2, second.stderr
    assert (f"flowbot serve: the SQLite database {database} is in use by another flowbot "
            f"process (pid {first.proc.pid})") in second.stderr
    assert "FLOWBOT_DATABASE_URL" in second.stderr and "PostgreSQL" in second.stderr
    assert "Traceback" not in second.stderr
    flow = tmp_path / "hello.yml"
    flow.write_text("id: hello\ntasks:\n  - id: t\n    image: busybox:latest\n"
                    "    commands: [echo hi]\n")
    local_run = subprocess.run([sys.executable, "-m", "bot.cli", "run", str(flow)], env=env,
                               capture_output=True, text=True, timeout=120)
    assert local_run.returncode == 2, local_run.stderr  # flowbot run on it is refused too
    assert f"the SQLite database {database} is in use by another flowbot" in local_run.stderr
    assert "Traceback" not in local_run.stderr
    health = httpx.get(first.url + "/healthz", timeout=5).json()
    assert health["ok"] is True and health["replicas"] == 1  # the first serves on, alone

    first.kill()
    again = Served(data_dir, fake_github)  # the lock died with its process
    served.append(again)
    health = httpx.get(again.url + "/healthz", timeout=5).json()
    assert health["replica"].endswith(tuple("0123456789abcdef")) and health["replicas"] == 1
    assert str(again.proc.pid) in health["replica"]
