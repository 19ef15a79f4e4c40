"""The two backends under test, each cleaned up after its test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest

from runner.backends.base import LABEL_OWNER
from runner.backends.docker_backend import DockerBackend
from runner.backends.process_backend import ProcessBackend


@pytest.fixture
def process_backend() -> Iterator[ProcessBackend]:
    backend = ProcessBackend(owner="tests")
    yield backend
    for attempt in backend.existing("tests"):
        backend.remove(attempt.handle)


@pytest.fixture
def owner(docker_client: docker.DockerClient) -> Iterator[str]:
    """A fresh owner label; every container carrying it is removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_OWNER}={name}"}
    ):
        container.remove(force=True)


@pytest.fixture
def docker_backend(docker_client: docker.DockerClient, owner: str,
                   busybox_image: str) -> DockerBackend:
    return DockerBackend(client=docker_client, owner=owner, pids_limit=64)
