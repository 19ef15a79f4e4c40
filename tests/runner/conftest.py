"""The run service on the real Docker engine, for the engine, service and
reconcile tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from enginekit import Kit, make_kit
from sqlalchemy.engine import Engine

from tests.runner.backends.engine_proxy import EngineProxy


@pytest.fixture
def kit(tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
        busybox_image: str) -> Kit:
    """A run service with a private owner label and a source repository in ``tmp_path``."""
    return make_kit(tmp_path, sqlite_engine, docker_client)


@pytest.fixture
def proxy() -> Iterator[EngineProxy]:
    """A socket in front of the real engine that a test can cut and restore."""
    made = EngineProxy()
    made.start()
    yield made
    made.close()
    gc.collect()  # sockets the SDK leaked while the engine was away, under the test's filter
