"""What a backend cannot honour is refused at the field that asks for it, per backend."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from runner.backends import BACKENDS, capabilities_of
from runner.backends.base import Capabilities
from runner.backends.docker_backend import DockerBackend
from runner.backends.fit import Target, refusal
from runner.backends.limits import TaskLimits
from runner.backends.process_backend import ProcessBackend
from runner.backends.swarm_backend import SwarmBackend
from runner.model.flows import flow_from_data
from runner.validation.diagnostics import Severity
from runner.validation.validate import validate_text
from runner.validation.validate_sandbox import validate_isolated

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


HUNGRY = b"""\
id: crunch
tasks:
  - id: fit
    image: busybox:latest
    resources:
      cpus: 8
      memory: 6g
    commands: ["true"]
  - id: small
    image: busybox:latest
    resources: {cpus: 2, memory: 4g}
    commands: ["true"]
errors:
  - id: page
    image: busybox:latest
    resources: {cpus: 4.5}
    commands: ["true"]
"""
OVER = ("{where}: asks for {asked}, above this flowbot's limit of {bound} ({setting}); "
        "ask for at most {bound}, or have the operator raise {setting}")
OVER_BOUNDS = [
    "flows/crunch.yml:6:13: error: " + OVER.format(
        where="tasks[0].resources.cpus", asked="8", bound="4", setting="FLOWBOT_TASK_MAX_CPUS"),
    "flows/crunch.yml:7:15: error: " + OVER.format(
        where="tasks[0].resources.memory", asked="6g", bound="4g",
        setting="FLOWBOT_TASK_MAX_MEMORY"),
    "flows/crunch.yml:16:23: error: " + OVER.format(
        where="errors[0].resources.cpus", asked="4.5", bound="4",
        setting="FLOWBOT_TASK_MAX_CPUS"),
]


@pytest.mark.parametrize("name", ["docker", "swarm"])
def test_resources_over_the_operators_bounds_are_errors_at_their_fields(name: str) -> None:
    target = Target.named(name, TaskLimits(max_cpus=4, max_memory="4g").checked)
    report = validate_text("flows/crunch.yml", HUNGRY, now=NOW, target=target)
    assert [str(d) for d in report.diagnostics] == OVER_BOUNDS
    assert report.flow is None and not report.ok


def test_admission_refuses_by_the_same_rule_in_the_same_words() -> None:
    limits = TaskLimits(max_cpus=4, max_memory="4g")
    flow = validate_text("flows/crunch.yml", HUNGRY, now=NOW).flow
    assert flow is not None
    # admission names the first task over the bounds (memory before CPUs), the same tail
    assert limits.refusal(flow) == (
        'flows/crunch.yml: task "fit" asks for resources.memory: 6g, above this flowbot\'s '
        "limit of 4g (FLOWBOT_TASK_MAX_MEMORY); ask for at most 4g, or have the operator "
        "raise FLOWBOT_TASK_MAX_MEMORY")
    raised = TaskLimits(max_cpus=8, max_memory="6g")  # what the operator could set instead
    assert raised.refusal(flow) is None
    target = Target.named("docker", raised.checked)
    assert validate_text("flows/crunch.yml", HUNGRY, now=NOW, target=target).diagnostics == []


def test_within_the_bounds_nothing_is_reported() -> None:
    within = HUNGRY.replace(b"cpus: 8", b"cpus: 4").replace(b"memory: 6g", b"memory: 4g")
    within = within.replace(b"{cpus: 4.5}", b"{cpus: 0.5}")
    target = Target.named("docker", TaskLimits(max_cpus=4, max_memory="4g").checked)
    report = validate_text("flows/crunch.yml", within, now=NOW, target=target)
    assert report.diagnostics == [] and report.flow is not None


def test_the_process_backend_applies_no_bounds_and_never_reads_them() -> None:
    def unread() -> TaskLimits:
        raise AssertionError("the process backend's bounds were read")

    target = Target.named("process", unread)
    assert target.bounds is None
    report = validate_text("flows/crunch.yml", HUNGRY, now=NOW, target=target)
    assert {d.severity for d in report.diagnostics} == {Severity.WARNING}  # not enforced
    assert all("resources: not enforced" in str(d) for d in report.diagnostics)


def test_without_the_bounds_only_the_backend_is_checked() -> None:
    report = validate_text("flows/crunch.yml", HUNGRY, now=NOW, target=Target.named("docker"))
    assert report.diagnostics == [] and report.ok


def test_the_bounds_cross_into_the_isolated_validation_child() -> None:
    target = Target.named("swarm", TaskLimits(max_cpus=4, max_memory="4g").checked)
    assert pickle.loads(pickle.dumps(target)) == target  # plain data
    report = validate_isolated({"flows/crunch.yml": HUNGRY}, now=NOW, memory_bytes=512 << 20,
                               seconds=30, target=target)
    assert [str(d) for d in report.diagnostics] == OVER_BOUNDS
