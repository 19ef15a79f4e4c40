"""The swarm backend on a real single-node swarm, beyond the contract suite:
labels and limits on the service and its container, cancel and timeouts that
leave nothing behind, a rejected image, a pool no node has, an engine away
while a task ends, and the factory."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import docker
import pytest

from runner.backends import capabilities_of, make_backend
from runner.backends.base import LABEL_ATTEMPT, LABEL_OWNER, LABEL_RUN, LABEL_TASK
from runner.backends.swarm_backend import LABEL_POOL, SwarmBackend, _epoch
from runner.errors import BackendError
from tests.polling import wait_until
from tests.runner.backends.backendkit import WAIT_SECONDS, run, spec
from tests.runner.backends.engine_proxy import EngineProxy  # the ``proxy`` fixture's

pytestmark = [pytest.mark.docker, pytest.mark.swarm]
KILLED = 137


def _services(client: docker.DockerClient, owner: str) -> list[object]:
    return list(client.services.list(filters={"label": f"{LABEL_OWNER}={owner}"}))


def _containers(client: docker.DockerClient, owner: str) -> list[object]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"}))


def test_service_and_container_carry_labels_limits_and_the_mounts(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "data.csv").write_text("x\n")
    task = spec(tmp_path, 'cat /inputs/data.csv; touch /inputs/no 2>/dev/null || echo '
                          'inputs-read-only; touch /etc/no 2>/dev/null || echo root-read-only; '
                          'echo "id=$(id -u)" >> "$FLOWBOT_OUTPUT"; sleep 300',
                inputs=tmp_path / "inputs", cpus=0.5, memory="64m", pool="default")
    handle = swarm_backend.start(task)
    wait_until(lambda: _containers(swarm_manager, swarm_backend.owner), WAIT_SECONDS,
               "the service's container")
    service = swarm_manager.api.inspect_service(handle)["Spec"]
    expected = {LABEL_RUN: "run-1", LABEL_TASK: "build", LABEL_ATTEMPT: "1",
                LABEL_OWNER: swarm_backend.owner}
    assert expected.items() <= service["Labels"].items()
    assert service["Labels"][LABEL_POOL] == "default"
    template = service["TaskTemplate"]
    assert template["RestartPolicy"]["Condition"] == "none"
    assert template["Resources"]["Limits"] == {"NanoCPUs": 500_000_000,
                                               "MemoryBytes": 64 * 1024 * 1024}
    assert template["ContainerSpec"]["ReadOnly"] is True
    assert "Placement" not in template or not template["Placement"].get("Constraints")
    container = _containers(swarm_manager, swarm_backend.owner)[0]
    assert expected.items() <= container.labels.items()  # type: ignore[attr-defined]
    chunks = swarm_backend.logs(handle)
    assert [next(chunks) for _ in range(3)] == [b"x\n", b"inputs-read-only\n",
                                               b"root-read-only\n"]
    swarm_backend.kill(handle)
    assert (tmp_path / "outputs" / "build.1").read_text().startswith("id=")


def test_a_pool_is_a_node_label_constraint(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    handle = swarm_backend.start(spec(tmp_path, "true", pool="gpu"))
    template = swarm_manager.api.inspect_service(handle)["Spec"]["TaskTemplate"]
    assert template["Placement"]["Constraints"] == ["node.labels.flowbot.pool==gpu"]
    swarm_backend.remove(handle)


def test_a_pool_no_node_has_fails_after_the_pending_time_naming_the_pool(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    handle = swarm_backend.start(spec(tmp_path, "echo never", pool="gpu"))
    assert list(swarm_backend.logs(handle)) == []  # the stream ends once pending too long
    with pytest.raises(BackendError) as info:
        swarm_backend.wait(handle, WAIT_SECONDS)
    message = str(info.value)
    assert "task build waited 3s (FLOWBOT_SWARM_PENDING_SECONDS) and no node took it" in message
    assert "pool 'gpu' needs a node labelled flowbot.pool=gpu" in message
    assert "docker node update --label-add flowbot.pool=gpu <node>" in message
    assert "no suitable node" in message  # the scheduler's own words
    swarm_backend.remove(handle)
    assert _services(swarm_manager, swarm_backend.owner) == []


def test_the_pending_time_counts_from_the_tasks_creation_not_from_an_adopters_first_look(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    handle = swarm_backend.start(spec(tmp_path, "echo never", pool="gpu"))
    assert swarm_backend.wait(handle, 0.5) is None  # pending, within its 3 s
    created = swarm_manager.api.inspect_service(handle)["CreatedAt"]
    wait_until(lambda: time.time() - _epoch(created) > 3.5,  # type: ignore[operator]
               WAIT_SECONDS, "the task to be pending longer than its 3 s")
    # the run's adopter (another replica, a restarted process) looks for the first time
    adopter = SwarmBackend(client=swarm_manager, owner=swarm_backend.owner,
                           pending_seconds=3.0, poll_seconds=0.05)
    with pytest.raises(BackendError, match="waited 3s"):
        adopter.wait(handle, 1.0)  # at its first look, not 3 s after it
    swarm_backend.remove(handle)


def test_a_labelled_node_takes_its_pool(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    node = swarm_manager.nodes.list()[0]
    spec_ = node.attrs["Spec"]
    node.update({**spec_, "Labels": {**(spec_.get("Labels") or {}), "flowbot.pool": "big"}})
    try:
        assert run(swarm_backend, spec(tmp_path, "echo placed", pool="big")) == (0, b"placed\n")
    finally:
        node.reload()
        spec_ = node.attrs["Spec"]
        labels = {k: v for k, v in (spec_.get("Labels") or {}).items() if k != "flowbot.pool"}
        node.update({**spec_, "Labels": labels})


def test_a_rejected_image_names_the_image_and_the_nodes_message(
    swarm_backend: SwarmBackend, tmp_path: Path
) -> None:
    handle = swarm_backend.start(spec(tmp_path, "true", image="flowbot-no-such-image:1"))
    assert list(swarm_backend.logs(handle)) == []
    with pytest.raises(BackendError) as info:
        swarm_backend.wait(handle, WAIT_SECONDS)
    assert "the swarm rejected task build (image flowbot-no-such-image:1) on node" in str(
        info.value)
    assert "No such image: flowbot-no-such-image:1" in str(info.value)
    assert [e.running for e in swarm_backend.existing(swarm_backend.owner)] == [False]
    swarm_backend.remove(handle)


def test_timeout_then_kill_leaves_neither_service_nor_container(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    handle = swarm_backend.start(spec(tmp_path, "echo going; sleep 300"))
    chunks = swarm_backend.logs(handle)
    assert next(chunks) == b"going\n"
    assert swarm_backend.wait(handle, 0.3) is None  # the task's timeout passed
    swarm_backend.kill(handle)  # returns once the container is gone
    assert _services(swarm_manager, swarm_backend.owner) == []
    assert _containers(swarm_manager, swarm_backend.owner) == []
    assert swarm_backend.wait(handle, WAIT_SECONDS) == KILLED
    assert b"".join(chunks) == b""  # the log stream ended with the service
    swarm_backend.remove(handle)


def test_kill_of_a_finished_task_keeps_its_exit_code(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    handle = swarm_backend.start(spec(tmp_path, "exit 3"))
    assert swarm_backend.wait(handle, WAIT_SECONDS) == 3
    swarm_backend.kill(handle)
    assert swarm_backend.wait(handle, 0) == 3
    assert _containers(swarm_manager, swarm_backend.owner) == []


def test_starting_the_same_attempt_again_finds_its_service_instead_of_a_second(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    task = spec(tmp_path, "sleep 300")
    first = swarm_backend.start(task)
    assert swarm_backend.start(task) == first  # as a create retried after a lost answer
    assert len(_services(swarm_manager, swarm_backend.owner)) == 1
    swarm_backend.remove(first)


def test_network_none_is_refused_rather_than_run_with_a_network(
    swarm_backend: SwarmBackend, swarm_manager: docker.DockerClient, tmp_path: Path
) -> None:
    with pytest.raises(BackendError, match="network: none, which swarm services cannot give"):
        swarm_backend.start(spec(tmp_path, "true", network="none"))
    assert _services(swarm_manager, swarm_backend.owner) == []


def test_the_factory_builds_it_and_its_capabilities_need_no_engine(
    swarm_manager: docker.DockerClient,
) -> None:
    backend = make_backend("swarm", owner="factory", client=swarm_manager, pending_seconds=5)
    assert isinstance(backend, SwarmBackend) and backend.pending_seconds == 5
    backend.check_manager()
    caps = capabilities_of("swarm")
    assert (caps.network_none, caps.pids_limit, caps.no_new_privileges) == (False, False, False)
    assert caps.accepts_pool("gpu") and caps.accepts_pool("default")


# The docker SDK does not close the socket of a failed unix connect (each ping while
# the engine is away): CPython frees it at once, with a ResourceWarning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_task_that_ends_while_the_engine_is_away_keeps_its_exit_code_and_log(
    swarm_manager: docker.DockerClient, owner: str, busybox_image: str, proxy: EngineProxy,
    tmp_path: Path,
) -> None:
    backend = SwarmBackend(client=proxy.client(), owner=owner, poll_seconds=0.05)
    handle = backend.start(spec(tmp_path, "echo before; while [ ! -e gate ]; do sleep 0.05; "
                                          "done; echo after; exit 3"))
    chunks = backend.logs(handle)
    assert next(chunks) == b"before\n"
    proxy.stop()  # every connection cut, new ones refused
    (tmp_path / "repo" / "gate").touch()
    codes: list[int | None] = []
    waiter = threading.Thread(target=lambda: codes.append(backend.wait(handle, None)))
    waiter.start()
    wait_until(lambda: swarm_manager.api.tasks(filters={"service": handle})[0]["Status"][
        "State"] == "failed", WAIT_SECONDS, "the task to end while the engine is away")
    assert waiter.is_alive()  # still waiting for the engine, not failed
    proxy.start()
    waiter.join(WAIT_SECONDS)
    assert codes == [3]
    assert b"".join(chunks) == b"after\n"  # the log resumed, nothing twice
    backend.remove(handle)
    assert _services(swarm_manager, owner) == [] and _containers(swarm_manager, owner) == []
