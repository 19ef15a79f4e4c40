"""Fixtures shared by every test: the real Docker engine, the offline images,
and the databases (SQLite file always; PostgreSQL where ``./dev test`` started one).

A missing engine or server skips the tests that need it on a developer's
machine, but fails them under CI (``CI=true``): CI must never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from runner import offline_images
from runner.state.db import connect, metadata
from tests.fakegithub.fixtures import fake_github  # noqa: F401  (the fake GitHub server)

IN_CI = os.environ.get("CI") == "true"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available on this machine")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        _missing("a Docker engine")
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> str:
    offline_images.ensure_image(docker_client, offline_images.BUSYBOX)
    return offline_images.BUSYBOX


@pytest.fixture(scope="session")
def python_image(docker_client: docker.DockerClient) -> str:
    offline_images.ensure_image(docker_client, offline_images.PYTHON)
    return offline_images.PYTHON


@pytest.fixture(scope="session")
def swarm_manager(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """The engine as a single-node swarm manager: made one (``docker swarm init
    --advertise-addr 127.0.0.1``) when it is in no swarm, and left again at the end
    of the session only if this session made it."""
    state = (docker_client.info().get("Swarm") or {}).get("LocalNodeState", "inactive")
    created = False
    if state == "inactive":
        try:
            docker_client.swarm.init(advertise_addr="127.0.0.1")
        except docker.errors.APIError as exc:
            _missing(f"a swarm on the Docker engine ({exc.explanation or exc})")
        created = True
    elif state != "active":
        _missing(f"a swarm on the Docker engine (its node is {state})")
    yield docker_client
    if created:
        docker_client.swarm.leave(force=True)


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test session's own on the server ``./dev test`` started,
    so test runs sharing the server (a developer's and a fresh clone's) never
    see each other's rows; dropped at the end."""
    base = os.environ.get("FLOWBOT_TEST_POSTGRES_URL")
    if not base:
        _missing("PostgreSQL (FLOWBOT_TEST_POSTGRES_URL)")
    assert base is not None
    with fresh_database(base, f"flowbot_test_{os.getpid()}_{uuid.uuid4().hex[:8]}") as url:
        yield url


@contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    """A new, empty database ``name`` on the server of ``server_url``: its URL, and
    the database dropped at the end (also with connections still open)."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: run once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'flowbot.db'}")
    else:
        engine = connect(request.getfixturevalue("postgres_url"))
        _reset(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path / 'flowbot.db'}")
    yield engine
    engine.dispose()
