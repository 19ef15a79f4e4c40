"""The single-host backends run only the default pool: a spec for another pool is
refused before anything starts (validation and admission refuse such flows first)."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from runner.backends.base import LABEL_OWNER
from runner.backends.docker_backend import DockerBackend
from runner.backends.process_backend import ProcessBackend
from runner.errors import BackendError
from tests.runner.backends import backendkit as kit

REFUSED = ('cannot start task build: the {backend} backend cannot place pool "gpu" (it runs '
           "only: default); remove pool: from the flow, or run flowbot with "
           "FLOWBOT_BACKEND=swarm")


def test_the_process_backend_refuses_another_pool(tmp_path: Path) -> None:
    backend = ProcessBackend(owner="pools")
    with pytest.raises(BackendError) as refused:
        backend.start(kit.spec(tmp_path, "touch started", pool="gpu"))
    assert str(refused.value) == REFUSED.format(backend="process")
    assert backend.existing("pools") == [] and not (tmp_path / "repo" / "started").exists()
    code, _ = kit.run(backend, kit.spec(tmp_path, "true", pool="default"))
    assert code == 0
    for attempt in backend.existing("pools"):
        backend.remove(attempt.handle)


@pytest.mark.docker
def test_the_docker_backend_refuses_another_pool(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    owner = f"pools-{uuid.uuid4().hex[:8]}"
    backend = DockerBackend(client=docker_client, owner=owner)
    spec = kit.spec(tmp_path, "true", pool="gpu", labels={LABEL_OWNER: owner})
    with pytest.raises(BackendError) as refused:
        backend.start(spec)
    assert str(refused.value) == REFUSED.format(backend="docker")
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"}) \
        == []
