"""The Docker backend mounts a run's file inputs read-only at /inputs: even a
task running as root cannot change them."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from runner.backends.docker_backend import DockerBackend
from runner.backends.limits import TaskLimits
from tests.runner.backends.backendkit import run, spec

pytestmark = pytest.mark.docker
CSV = b"month,revenue\n2026-11,1200\n"


def test_the_docker_mount_is_read_only_even_for_root(
    tmp_path: Path, docker_client: docker.DockerClient, owner: str, busybox_image: str
) -> None:
    backend = DockerBackend(client=docker_client, owner=owner,
                            limits=TaskLimits(user="0:0"))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "data").write_bytes(CSV)
    task = spec(tmp_path, "cat /inputs/data; echo x >> /inputs/data || true", inputs=inputs)
    code, logs = run(backend, task)
    assert code == 0
    # stdout and stderr interleave in any order
    assert sorted(logs.decode().splitlines()) == sorted(
        [*CSV.decode().splitlines(), "sh: can't create /inputs/data: Read-only file system"])
    assert (inputs / "data").read_bytes() == CSV


