"""Mirrors shared by replicas: real processes cloning and fetching one mirror of a
real local git remote at once (bot/repos.py's fcntl lock next to the mirror)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bot.e2e_support import Origin
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]

# One replica's work: wait for the start file, clone (or find) the mirror, then fetch
# it again and again while the other process does the same, reading flows each time.
WORKER = """
import sys, time
from pathlib import Path
from bot.repos import Mirrors
data, url, sha, start, rounds = sys.argv[1:6]
while not Path(start).exists():
    time.sleep(0.01)
mirrors = Mirrors(Path(data))
path = mirrors.mirror("Octo/Flows", url, want=sha)
for _ in range(int(rounds)):
    mirrors.fetch(path)
    assert mirrors.read_flows(path, sha) == {"flows/a.yml": b"id: a\\n"}
print("done", path)
"""

# Holds the mirror's lock until the release file appears.
HOLDER = """
import sys, time
from pathlib import Path
from bot.repos import Mirrors
data, held, release = sys.argv[1:4]
mirrors = Mirrors(Path(data))
with mirrors._lock(mirrors.path_of("Octo/Flows")):
    Path(held).touch()
    while not Path(release).exists():
        time.sleep(0.01)
"""


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Origin, str]:
    upstream = Origin(tmp_path / "upstream")
    for number in range(20):  # some history, so each clone and fetch has work to do
        sha = upstream.commit({"flows/a.yml": b"id: a\n", f"src/f{number}.txt": b"x" * 5000})
    for number in range(10):
        upstream.commit({f"branch{number}.txt": b"b"}, branch=f"topic{number}")
    upstream.checkout("main")
    return upstream, sha


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_processes_clone_and_fetch_one_mirror_at_once(
        tmp_path: Path, origin: tuple[Origin, str]) -> None:
    upstream, sha = origin
    data, start = tmp_path / "data", tmp_path / "start"
    workers = [_spawn(WORKER, str(data), str(upstream.path), sha, str(start), "8")
               for _ in range(2)]
    start.touch()  # both begin together: one clones, the other waits and finds the clone
    results = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.startswith("done ")
    mirror = data / "mirrors" / "octo" / "flows.git"
    assert (mirror / "HEAD").exists()
    assert (mirror.parent / "flows.git.lock").exists()  # the lock file sits next to it
    assert sorted(p.name for p in mirror.parent.iterdir()) == ["flows.git", "flows.git.lock"]


def test_the_lock_is_held_across_processes(tmp_path: Path) -> None:
    data, held, release = tmp_path / "data", tmp_path / "held", tmp_path / "release"
    holder = _spawn(HOLDER, str(data), str(held), str(release))
    try:
        wait_until(held.exists, 30, "the other process to take the mirror's lock")
        lock = data / "mirrors" / "octo" / "flows.git.lock"
        with lock.open("a+b") as handle:
            with pytest.raises(BlockingIOError):  # another process holds it
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            release.touch()
            _, err = holder.communicate(timeout=30)
            assert holder.returncode == 0, err
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        release.touch()
        holder.communicate(timeout=30)
