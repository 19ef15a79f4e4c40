"""The three backends under test, each cleaned up after its test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest

from runner.backends.base import LABEL_OWNER
from runner.backends.docker_backend import DockerBackend
from runner.backends.process_backend import ProcessBackend
from runner.backends.swarm_backend import SwarmBackend


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
    if docker_client.info().get("Swarm", {}).get("ControlAvailable"):  # a swarm manager
        for service in docker_client.services.list(
                filters={"label": f"{LABEL_OWNER}={name}"}):
            service.remove()
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_OWNER}={name}"}
    ):
        container.remove(force=True)


@pytest.fixture
def docker_backend(docker_client: docker.DockerClient, owner: str,
                   busybox_image: str) -> DockerBackend:
    return DockerBackend(client=docker_client, owner=owner, pids_limit=64)


@pytest.fixture
def swarm_backend(swarm_manager: docker.DockerClient, owner: str,
                  busybox_image: str) -> SwarmBackend:
    """Polls fast and gives up on a pending task after 3 s (tests of missing pools)."""
    return SwarmBackend(client=swarm_manager, owner=owner, pending_seconds=3.0,
                        poll_seconds=0.05)
