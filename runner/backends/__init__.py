"""Execution backends: where a task's container (or process) runs.

:func:`make_backend` builds one by name (``docker``, the default,
``process`` or ``swarm``); each module is imported only when chosen, so the process backend
works on a machine without the docker SDK's engine.
"""

from __future__ import annotations

from typing import Any

from runner.backends.base import Backend, Capabilities
from runner.errors import ConfigError

BACKENDS = ("docker", "process", "swarm")
UNKNOWN_BACKEND = "unknown backend {name!r}; choose one of: docker, process, swarm"


def make_backend(name: str, owner: str, **options: Any) -> Backend:
    """The backend called ``name``, labelling its work with ``owner``.

    ``options`` go to the backend's constructor (``client``, ``pids_limit`` for
    docker). Raises ConfigError for an unknown name.
    """
    if name == "process":
        from runner.backends.process_backend import ProcessBackend

        return ProcessBackend(owner=owner, **options)
    if name == "docker":
        from runner.backends.docker_backend import DockerBackend

        return DockerBackend(owner=owner, **options)
    if name == "swarm":
        from runner.backends.swarm_backend import SwarmBackend

        return SwarmBackend(owner=owner, **options)
    raise ConfigError("backend", UNKNOWN_BACKEND.format(name=name))


def capabilities_of(name: str) -> Capabilities:
    """What the backend called ``name`` can honour, without reaching any engine.

    Raises ConfigError for an unknown name.
    """
    if name == "process":
        from runner.backends.process_backend import ProcessBackend

        return ProcessBackend.capabilities()
    if name == "docker":
        from runner.backends.docker_backend import DockerBackend

        return DockerBackend.capabilities()
    if name == "swarm":
        from runner.backends.swarm_backend import SwarmBackend

        return SwarmBackend.capabilities()
    raise ConfigError("backend", UNKNOWN_BACKEND.format(name=name))
