"""The run service on the real Docker engine, for the engine, service and
reconcile tests."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from enginekit import Kit, make_kit
from sqlalchemy.engine import Engine


@pytest.fixture
def kit(tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
        busybox_image: str) -> Kit:
    """A run service with a private owner label and a source repository in ``tmp_path``."""
    return make_kit(tmp_path, sqlite_engine, docker_client)
