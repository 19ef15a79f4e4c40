"""The Docker backend on the real engine: what runs, what comes back, and which
limits the container really carries (checked by inspecting it)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.models.images
import pytest

from runner.backends import make_backend
from runner.backends.base import LABEL_OWNER, LABEL_RUN, LABEL_TASK
from runner.backends.docker_backend import DockerBackend
from runner.backends.limits import TaskLimits
from runner.errors import BackendError
from runner.model.flows import PullPolicy
from tests.runner.backends import backendkit as kit

pytestmark = pytest.mark.docker


@pytest.fixture
def backend(docker_backend: DockerBackend) -> DockerBackend:
    return docker_backend


def test_task_runs_in_the_containers_workdir(backend: DockerBackend, tmp_path: Path) -> None:
    assert kit.run(backend, kit.spec(tmp_path, "pwd; ls")) == (0, b"/workspace\n")


def test_logs_stream_in_order_with_stdout_and_stderr(
    backend: DockerBackend, tmp_path: Path
) -> None:
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.1; done"
    spec = kit.spec(tmp_path, script)
    handle = backend.start(spec)
    lines = b"".join(backend.logs(handle)).decode().splitlines()
    assert backend.wait(handle, 60) == 0
    # Two pipes: order holds within each, and across iterations (0.1 s apart).
    assert [line for line in lines if line.startswith("out")] == ["out1", "out2", "out3"]
    assert [line for line in lines if line.startswith("err")] == ["err1", "err2", "err3"]
    assert [sorted(lines[i : i + 2]) for i in (0, 2, 4)] == [
        ["err1", "out1"], ["err2", "out2"], ["err3", "out3"]
    ]


def test_safe_defaults_and_resources_are_applied(
    backend: DockerBackend, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    spec = kit.spec(tmp_path, "true", cpus=0.5, memory="64m", network="none")
    handle = backend.start(spec)
    assert backend.wait(handle, 60) == 0
    host = docker_client.api.inspect_container(handle)["HostConfig"]
    assert host["Privileged"] is False
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert host["PidsLimit"] == 64
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NetworkMode"] == "none"
    assert host["AutoRemove"] is False
    binds = host["Binds"]
    assert len(binds) == 2
    assert not any("docker.sock" in bind for bind in binds)


def test_no_new_privileges_is_in_force_inside(
    backend: DockerBackend, tmp_path: Path
) -> None:
    script = "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status"
    code, logs = kit.run(backend, kit.spec(tmp_path, script))
    assert code == 0
    assert b"NoNewPrivs:\t1" in logs
    assert b"CapEff:\t0000000000000000" in logs


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP server on every host address answering "hi"; yields its port."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hi\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_network_none_really_cuts_the_network(
    backend: DockerBackend, tmp_path: Path, host_listener: int
) -> None:
    # On the bridge the host answers through the default gateway...
    find_gateway = "ip route | awk '/default/ {print $3}'"
    code, gateway = kit.run(backend, kit.spec(tmp_path, find_gateway))
    assert code == 0 and gateway.strip()
    connect = f"ls /sys/class/net; nc -w 2 {gateway.decode().strip()} {host_listener}"
    code, logs = kit.run(backend, kit.spec(tmp_path, connect, task_id="bridge"))
    assert (code, logs.split()[-1]) == (0, b"hi")
    # ...with network: none the same connection cannot even be routed.
    code, logs = kit.run(backend, kit.spec(tmp_path, connect, network="none"))
    assert code != 0
    assert b"lo" in logs.split()  # stdout and stderr are separate pipes: order varies
    assert b"eth0" not in logs and b"hi" not in logs.split()


def test_pids_limit_stops_a_fork_bomb(
    backend: DockerBackend, tmp_path: Path
) -> None:
    script = "for i in $(seq 100); do sleep 30 & done; echo spawned"
    code, logs = kit.run(backend, kit.spec(tmp_path, script))
    assert b"spawned" not in logs or code != 0
    assert b"can't fork" in logs or b"Resource temporarily unavailable" in logs


def test_memory_limit_kills_a_hog(
    backend: DockerBackend, python_image: str, tmp_path: Path
) -> None:
    script = "python3 -c 'x = bytearray(200 * 1024 * 1024); print(len(x))'"
    code, logs = kit.run(backend, kit.spec(tmp_path, script, python_image, memory="64m"))
    assert code != 0
    assert b"209715200" not in logs


def test_python_task_can_write_workspace_and_output(
    backend: DockerBackend, python_image: str, tmp_path: Path
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "sub").mkdir(mode=0o755)
    script = (
        "python3 -c \"open('sub/result.txt', 'w').write('done');"
        "import os; open(os.environ['FLOWBOT_OUTPUT'], 'a').write('rows=2\\n')\""
    )
    code, logs = kit.run(backend, kit.spec(tmp_path, script, python_image))
    assert (code, logs) == (0, b"")
    assert (tmp_path / "repo" / "sub" / "result.txt").read_text() == "done"
    assert (tmp_path / "outputs" / "build.1").read_text() == "rows=2\n"


def test_task_sees_only_its_own_output_file(
    backend: DockerBackend, tmp_path: Path
) -> None:
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "other.1").write_text("secret=1\n")
    script = 'ls /flowbot; echo "$FLOWBOT_OUTPUT"'
    code, logs = kit.run(backend, kit.spec(tmp_path, script))
    assert (code, logs) == (0, b"build.1\n/flowbot/build.1\n")


def test_container_carries_run_and_task_labels(
    backend: DockerBackend, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    handle = backend.start(kit.spec(tmp_path, "true"))
    labels = docker_client.containers.get(handle).labels
    assert labels[LABEL_RUN] == "run-1"
    assert labels[LABEL_TASK] == "build"
    assert labels[LABEL_OWNER] == backend.owner


def test_pull_never_with_missing_image_is_a_clear_error(
    backend: DockerBackend, tmp_path: Path
) -> None:
    spec = kit.spec(tmp_path, "true", "flowbot-test/absent:1", pull=PullPolicy.NEVER)
    with pytest.raises(BackendError) as info:
        backend.prepare(spec)
    assert str(info.value) == (
        "image flowbot-test/absent:1 is not present and pull: never is set; "
        "build or pull it on the runner host"
    )


def test_pull_never_and_if_not_present_use_a_local_image(
    backend: DockerBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pulled: list[str] = []

    def pull(_images: object, repository: str, **_kwargs: object) -> None:
        pulled.append(repository)
        raise AssertionError(f"pulled {repository} although it is present")

    monkeypatch.setattr(docker.models.images.ImageCollection, "pull", pull)
    never = kit.spec(tmp_path, "true", pull=PullPolicy.NEVER)
    backend.prepare(never)
    backend.prepare(kit.spec(tmp_path, "true"))
    assert pulled == []
    assert kit.run(backend, never) == (0, b"")  # the local image runs the task


@pytest.mark.parametrize("policy", [PullPolicy.IF_NOT_PRESENT, PullPolicy.ALWAYS])
def test_failed_pull_names_the_image_and_the_reason(
    backend: DockerBackend, tmp_path: Path, policy: PullPolicy
) -> None:
    spec = kit.spec(tmp_path, "true", "127.0.0.1:9/flowbot-test/absent:1", pull=policy)
    with pytest.raises(BackendError) as info:
        backend.prepare(spec)
    message = str(info.value)
    assert message.startswith("cannot pull image 127.0.0.1:9/flowbot-test/absent:1: ")
    assert len(message) > len("cannot pull image 127.0.0.1:9/flowbot-test/absent:1: ")


def test_unreachable_engine_is_a_clear_error() -> None:
    # TCP, not a dead unix socket: the SDK leaks the socket of a failed unix connect.
    client = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41")
    backend = DockerBackend(client=client, owner="nobody")
    with pytest.raises(BackendError) as info:
        backend.existing("nobody")
    client.close()
    assert "cannot reach the Docker engine at " in str(info.value)
    assert str(info.value).endswith("is dockerd running?")


def test_make_backend_builds_a_docker_backend(docker_client: docker.DockerClient) -> None:
    backend = make_backend("docker", owner="factory", client=docker_client)
    assert isinstance(backend, DockerBackend) and backend.owner == "factory"
    assert backend.existing("factory") == []


@pytest.fixture(scope="module")
def nonroot_image(docker_client: docker.DockerClient, busybox_image: str) -> Iterator[str]:
    """busybox with ``USER 1234`` (would not own the run's files) and an entrypoint
    that fails (the task's argv must replace it)."""
    tag = "flowbot-test/nonroot:latest"
    dockerfile = f'FROM {busybox_image}\nUSER 1234:1234\nENTRYPOINT ["/bin/false"]\n'.encode()
    docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_task_runs_as_the_task_user_with_its_own_argv_whatever_the_image_says(
    backend: DockerBackend, nonroot_image: str, tmp_path: Path
) -> None:
    (tmp_path / "repo").mkdir(mode=0o755)
    script = 'id -u; mkdir made; echo data > made/file; echo done=yes >> "$FLOWBOT_OUTPUT"'
    code, logs = kit.run(backend, kit.spec(tmp_path, script, nonroot_image))
    uid = 65534 if os.getuid() == 0 else os.getuid()  # never root by default
    assert (code, logs) == (0, f"{uid}\n".encode())
    written = tmp_path / "repo" / "made" / "file"
    assert written.read_text() == "data\n"
    assert (written.stat().st_uid, written.parent.stat().st_uid) == (uid, uid)
    assert (tmp_path / "outputs" / "build.1").read_text() == "done=yes\n"


def test_missing_workspace_is_an_error_not_an_empty_mount(
    backend: DockerBackend, tmp_path: Path
) -> None:
    spec = kit.spec(tmp_path, "true", workspace=tmp_path / "gone")
    with pytest.raises(BackendError) as info:
        backend.start(spec)
    assert "workspace" in str(info.value) and "gone" in str(info.value)
    assert not (tmp_path / "gone").exists()
    assert backend.existing(backend.owner) == []


def test_containers_get_the_operators_isolation_defaults(
    backend: DockerBackend, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    script = ("id -u; touch /etc/x 2>/dev/null && echo root-writable; echo t > /tmp/t; "
              "echo w > written; echo $HOME")
    spec = kit.spec(tmp_path, script)
    handle = backend.start(spec)
    logs = b"".join(backend.logs(handle))
    assert backend.wait(handle, 60) == 0
    inspected = docker_client.api.inspect_container(handle)
    host = inspected["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp"} and "size=268435456" in host["Tmpfs"]["/tmp"]
    assert (host["Memory"], host["MemorySwap"]) == (1024**3, 1024**3)  # FLOWBOT_TASK_MEMORY
    assert host["NanoCpus"] == 1_000_000_000  # FLOWBOT_TASK_CPUS
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": "100m", "max-file": "2"}}
    uid = 65534 if os.getuid() == 0 else os.getuid()
    assert inspected["Config"]["User"] == f"{uid}:{uid if os.getuid() == 0 else os.getgid()}"
    assert logs == f"{uid}\n/tmp\n".encode()  # not root; / read-only; /tmp and workspace writable
    written = tmp_path / "repo" / "written"
    assert written.read_text() == "w\n" and written.stat().st_uid == uid
    backend.remove(handle)
    shutil.rmtree(tmp_path / "repo")  # flowbot can still remove what the task wrote


def test_a_request_over_the_operators_bound_is_refused_before_any_container(
    docker_client: docker.DockerClient, owner: str, tmp_path: Path
) -> None:
    limits = TaskLimits(memory="64m", max_memory="128m", cpus=0.5, max_cpus=1)
    backend = DockerBackend(client=docker_client, owner=owner, limits=limits)
    handle = backend.start(kit.spec(tmp_path, "true", memory="96m", cpus=1.0))
    assert backend.wait(handle, 60) == 0  # within the bounds: the flow's request applies
    host = docker_client.api.inspect_container(handle)["HostConfig"]
    assert (host["Memory"], host["NanoCpus"]) == (96 * 1024**2, 1_000_000_000)
    with pytest.raises(BackendError) as info:
        backend.start(kit.spec(tmp_path, "true", memory="1g", task_id="big"))
    assert str(info.value) == (
        'run run-1: the flow: task "big" asks for resources.memory: 1g, above this flowbot\'s '
        "limit of 128m (FLOWBOT_TASK_MAX_MEMORY); ask for at most 128m, or have the operator "
        "raise FLOWBOT_TASK_MAX_MEMORY")
    assert [e.task_id for e in backend.existing(owner)] == ["build"]
