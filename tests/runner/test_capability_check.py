"""What a backend cannot honour is refused at the field that asks for it, per backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.backends import BACKENDS, capabilities_of
from runner.backends.base import Capabilities
from runner.backends.docker_backend import DockerBackend
from runner.backends.fit import Target, refusal
from runner.backends.process_backend import ProcessBackend
from runner.backends.swarm_backend import SwarmBackend
from runner.model.flows import flow_from_data
from runner.validation.validate import validate_text

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FLOW = b"""\
id: train
pool: gpu
tasks:
  - id: fetch
    image: busybox:latest
    network: none
    pool: default
    commands: ["true"]
  - id: fit
    image: busybox:latest
    resources: {memory: 512m}
    commands: ["true"]
errors:
  - id: page
    image: busybox:latest
    pool: big-mem
    network: none
    commands: ["true"]
"""
GPU = ('{where}: "gpu" cannot be placed by the {backend} backend, which runs only the '
       '"default" pool; remove pool: (or set it to default), or run flowbot with '
       "FLOWBOT_BACKEND=swarm on nodes labelled flowbot.pool=gpu")
BIG_MEM = GPU.replace("gpu", "big-mem")
NETWORK = ('{where}: "none" cannot be honoured by the {backend} backend: {why}; remove it, '
           "or run flowbot with FLOWBOT_BACKEND=docker")
HOST = "tasks run as host processes, on flowbot's own network"
EXPECTED = {
    "docker": [
        "flows/train.yml:2:7: error: " + GPU.format(where="pool", backend="docker"),
        "flows/train.yml:16:11: error: "
        + BIG_MEM.format(where="errors[0].pool", backend="docker"),
    ],
    "process": [
        "flows/train.yml:2:7: error: " + GPU.format(where="pool", backend="process"),
        "flows/train.yml:6:14: error: "
        + NETWORK.format(where="tasks[0].network", backend="process", why=HOST),
        "flows/train.yml:11:16: warning: tasks[1].resources: not enforced by the process "
        "backend (tasks run without CPU or memory limits); the task runs anyway",
        "flows/train.yml:16:11: error: "
        + BIG_MEM.format(where="errors[0].pool", backend="process"),
        "flows/train.yml:17:14: error: "
        + NETWORK.format(where="errors[0].network", backend="process", why=HOST),
    ],
    "swarm": [
        "flows/train.yml:6:14: error: " + NETWORK.format(
            where="tasks[0].network", backend="swarm",
            why="swarm services always get a network"),
        "flows/train.yml:17:14: error: " + NETWORK.format(
            where="errors[0].network", backend="swarm",
            why="swarm services always get a network"),
    ],
}


def _target(name: str) -> Target:
    return Target.named(name)


def test_every_backend_is_checked() -> None:
    assert sorted(EXPECTED) == sorted(BACKENDS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_mismatch_is_an_error_at_its_field(name: str) -> None:
    report = validate_text("flows/train.yml", FLOW, now=NOW, target=_target(name))
    assert [str(d) for d in report.diagnostics] == EXPECTED[name]
    assert report.flow is None and not report.ok


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_admission_refuses_with_the_first_error(name: str) -> None:
    report = validate_text("flows/train.yml", FLOW, now=NOW)
    assert report.ok and report.flow is not None  # backend-neutral: the flow is well formed
    first = next(d for d in EXPECTED[name] if ": error: " in d).split(": error: ", 1)[1]
    assert refusal(report.flow, _target(name)) == f"flows/train.yml: {first}"


def test_a_flow_every_backend_honours_passes_everywhere() -> None:
    plain = FLOW.replace(b"pool: gpu\n", b"").replace(b"    pool: big-mem\n", b"")
    plain = plain.replace(b"    network: none\n", b"").replace(b"    resources: {memory: 512m}\n",
                                                              b"")
    for name in EXPECTED:
        report = validate_text("flows/train.yml", plain, now=NOW, target=_target(name))
        assert report.diagnostics == [] and report.flow is not None
        assert refusal(report.flow, _target(name)) is None


def test_a_pool_inherited_from_the_flow_is_reported_once_at_the_flow() -> None:
    text = b"id: f\npool: gpu\ntasks:\n" + b"".join(
        b"  - id: t%d\n    image: busybox\n    commands: [\"true\"]\n" % n for n in range(3))
    report = validate_text("flows/f.yml", text, now=NOW, target=_target("docker"))
    assert [(d.line, d.col) for d in report.diagnostics] == [(2, 7)]


def test_a_flow_built_without_its_file_is_refused_too() -> None:
    flow = flow_from_data({"id": "f", "tasks": [
        {"id": "t", "image": "b", "script": "true", "pool": "gpu"}]})
    assert refusal(flow, _target("docker")) == "flow f: " + GPU.format(
        where="tasks[0].pool", backend="docker")


def test_capabilities_are_known_without_an_engine() -> None:
    """Class-level answers: pull-request validation has no engine to ask."""
    assert DockerBackend.capabilities() == capabilities_of("docker") == Capabilities(
        network_none=True, pids_limit=True, no_new_privileges=True, read_only_root=True,
        resource_limits=True, pools=frozenset({"default"}))
    process = ProcessBackend.capabilities()
    assert not (process.network_none or process.pids_limit or process.no_new_privileges
                or process.read_only_root or process.resource_limits)
    assert process.accepts_pool("default") and not process.accepts_pool("gpu")
    swarm = SwarmBackend.capabilities()  # the facts of Docker 20.10 swarm services
    assert not (swarm.network_none or swarm.pids_limit or swarm.no_new_privileges)
    assert swarm.resource_limits and swarm.pools is None and swarm.accepts_pool("anything")
