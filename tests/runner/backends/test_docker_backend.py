"""The Docker backend on the real engine: what runs, what comes back, and which
limits the container really carries (checked by inspecting it)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runner.backends import make_backend
from runner.backends.base import LABEL_OWNER, LABEL_RUN, LABEL_TASK, TaskSpec
from runner.backends.docker_backend import DockerBackend
from runner.errors import BackendError
from runner.flows import PullPolicy
from runner.limits import TaskLimits

pytestmark = pytest.mark.docker


@pytest.fixture
def owner(docker_client: docker.DockerClient) -> Iterator[str]:
    """A fresh owner label; every container carrying it is removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_OWNER}={name}"}
    ):
        container.remove(force=True)


@pytest.fixture
def backend(docker_client: docker.DockerClient, owner: str) -> DockerBackend:
    return DockerBackend(client=docker_client, owner=owner, pids_limit=64)


def _spec(tmp_path: Path, image: str, script: str, **overrides: object) -> TaskSpec:
    workspace = tmp_path / "repo"
    workspace.mkdir(exist_ok=True)
    output = tmp_path / "outputs" / "build.1"
    output.parent.mkdir(exist_ok=True)
    output.write_bytes(b"")
    fields: dict[str, object] = {
        "run_id": "run-1", "task_id": "build", "attempt": 1, "image": image,
        "argv": ("sh", "-ec", script), "env": {"GREETING": "hello"},
        "workspace": workspace, "workdir": "/workspace", "output_file": output,
    }
    fields.update(overrides)
    return TaskSpec(**fields)  # type: ignore[arg-type]


def _run(backend: DockerBackend, spec: TaskSpec) -> tuple[int | None, bytes]:
    backend.prepare(spec)
    handle = backend.start(spec)
    logs = b"".join(backend.logs(handle))
    return backend.wait(handle, 60), logs


def test_task_runs_with_env_workdir_exit_code_and_output(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "data.csv").write_text("a,b\n")
    script = (
        'echo "$GREETING from $(pwd)"; cat data.csv; echo answer=42 >> "$FLOWBOT_OUTPUT"; exit 3'
    )
    code, logs = _run(backend, _spec(tmp_path, busybox_image, script))
    assert code == 3
    assert logs == b"hello from /workspace\na,b\n"
    assert (tmp_path / "outputs" / "build.1").read_text() == "answer=42\n"


def test_logs_stream_in_order_with_stdout_and_stderr(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.1; done"
    spec = _spec(tmp_path, busybox_image, script)
    handle = backend.start(spec)
    lines = b"".join(backend.logs(handle)).decode().splitlines()
    assert backend.wait(handle, 60) == 0
    # Two pipes: order holds within each, and across iterations (0.1 s apart).
    assert [line for line in lines if line.startswith("out")] == ["out1", "out2", "out3"]
    assert [line for line in lines if line.startswith("err")] == ["err1", "err2", "err3"]
    assert [sorted(lines[i : i + 2]) for i in (0, 2, 4)] == [
        ["err1", "out1"], ["err2", "out2"], ["err3", "out3"]
    ]


def test_logs_arrive_while_the_task_still_runs(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    gate = tmp_path / "repo" / "gate"
    spec = _spec(tmp_path, busybox_image, "echo first; while [ ! -e gate ]; do sleep 0.05; done")
    handle = backend.start(spec)
    chunks = backend.logs(handle)
    assert next(chunks) == b"first\n"  # the task is blocked on the gate at this point
    assert backend.wait(handle, 0) is None
    gate.touch()
    assert list(chunks) == []
    assert backend.wait(handle, 60) == 0


def test_wait_times_out_and_kill_stops_the_task(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    handle = backend.start(_spec(tmp_path, busybox_image, "sleep 300"))
    assert backend.wait(handle, 0.5) is None
    backend.kill(handle)
    assert backend.wait(handle, 60) == 137
    backend.kill(handle)  # idempotent once stopped


def test_kill_and_wait_from_another_thread(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    handle = backend.start(_spec(tmp_path, busybox_image, "sleep 300"))
    codes: list[int | None] = []
    waiter = threading.Thread(target=lambda: codes.append(backend.wait(handle, None)))
    waiter.start()
    backend.kill(handle)
    waiter.join(60)
    assert codes == [137]


def test_safe_defaults_and_resources_are_applied(
    backend: DockerBackend, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, busybox_image, "true", cpus=0.5, memory="64m", network="none")
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
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    script = "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status"
    code, logs = _run(backend, _spec(tmp_path, busybox_image, script))
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
    backend: DockerBackend, busybox_image: str, tmp_path: Path, host_listener: int
) -> None:
    # On the bridge the host answers through the default gateway...
    find_gateway = "ip route | awk '/default/ {print $3}'"
    code, gateway = _run(backend, _spec(tmp_path, busybox_image, find_gateway))
    assert code == 0 and gateway.strip()
    connect = f"ls /sys/class/net; nc -w 2 {gateway.decode().strip()} {host_listener}"
    code, logs = _run(backend, _spec(tmp_path, busybox_image, connect, task_id="bridge"))
    assert (code, logs.split()[-1]) == (0, b"hi")
    # ...with network: none the same connection cannot even be routed.
    code, logs = _run(backend, _spec(tmp_path, busybox_image, connect, network="none"))
    assert code != 0
    assert b"lo" in logs.split()  # stdout and stderr are separate pipes: order varies
    assert b"eth0" not in logs and b"hi" not in logs.split()


def test_pids_limit_stops_a_fork_bomb(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    script = "for i in $(seq 100); do sleep 30 & done; echo spawned"
    code, logs = _run(backend, _spec(tmp_path, busybox_image, script))
    assert b"spawned" not in logs or code != 0
    assert b"can't fork" in logs or b"Resource temporarily unavailable" in logs


def test_memory_limit_kills_a_hog(
    backend: DockerBackend, python_image: str, tmp_path: Path
) -> None:
    script = "python3 -c 'x = bytearray(200 * 1024 * 1024); print(len(x))'"
    code, logs = _run(backend, _spec(tmp_path, python_image, script, memory="64m"))
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
    code, logs = _run(backend, _spec(tmp_path, python_image, script))
    assert (code, logs) == (0, b"")
    assert (tmp_path / "repo" / "sub" / "result.txt").read_text() == "done"
    assert (tmp_path / "outputs" / "build.1").read_text() == "rows=2\n"


def test_task_sees_only_its_own_output_file(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "other.1").write_text("secret=1\n")
    script = 'ls /flowbot; echo "$FLOWBOT_OUTPUT"'
    code, logs = _run(backend, _spec(tmp_path, busybox_image, script))
    assert (code, logs) == (0, b"build.1\n/flowbot/build.1\n")


def test_labels_and_existing(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, busybox_image, "exit 5", labels={"extra": "yes"})
    done = backend.start(spec)
    assert backend.wait(done, 60) == 5
    running = backend.start(_spec(tmp_path, busybox_image, "sleep 300", task_id="slow", attempt=2))
    found = {e.handle: e for e in backend.existing(backend.owner)}
    assert set(found) == {done, running}
    assert (found[done].run_id, found[done].task_id, found[done].attempt) == ("run-1", "build", 1)
    assert (found[done].running, found[done].exit_code) == (False, 5)
    assert (found[running].task_id, found[running].attempt) == ("slow", 2)
    assert (found[running].running, found[running].exit_code) == (True, None)
    assert backend.existing("somebody-else-entirely") == []


def test_remove_leaves_nothing_and_is_idempotent(
    backend: DockerBackend, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    handle = backend.start(_spec(tmp_path, busybox_image, "sleep 300"))
    backend.remove(handle)
    backend.remove(handle)
    backend.kill(handle)
    by_owner = {"label": f"{LABEL_OWNER}={backend.owner}"}
    labelled = docker_client.containers.list(all=True, filters=by_owner)
    assert labelled == []
    assert list(backend.logs(handle)) == []


def test_container_carries_run_and_task_labels(
    backend: DockerBackend, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    handle = backend.start(_spec(tmp_path, busybox_image, "true"))
    labels = docker_client.containers.get(handle).labels
    assert labels[LABEL_RUN] == "run-1"
    assert labels[LABEL_TASK] == "build"
    assert labels[LABEL_OWNER] == backend.owner


def test_pull_never_with_missing_image_is_a_clear_error(
    backend: DockerBackend, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "flowbot-test/absent:1", "true", pull=PullPolicy.NEVER)
    with pytest.raises(BackendError) as info:
        backend.prepare(spec)
    assert str(info.value) == (
        "image flowbot-test/absent:1 is not present and pull: never is set; "
        "build or pull it on the runner host"
    )


def test_pull_never_and_if_not_present_use_a_local_image(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    backend.prepare(_spec(tmp_path, busybox_image, "true", pull=PullPolicy.NEVER))
    backend.prepare(_spec(tmp_path, busybox_image, "true"))


@pytest.mark.parametrize("policy", [PullPolicy.IF_NOT_PRESENT, PullPolicy.ALWAYS])
def test_failed_pull_names_the_image_and_the_reason(
    backend: DockerBackend, tmp_path: Path, policy: PullPolicy
) -> None:
    spec = _spec(tmp_path, "127.0.0.1:9/flowbot-test/absent:1", "true", pull=policy)
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
    code, logs = _run(backend, _spec(tmp_path, nonroot_image, script))
    uid = 65534 if os.getuid() == 0 else os.getuid()  # never root by default
    assert (code, logs) == (0, f"{uid}\n".encode())
    written = tmp_path / "repo" / "made" / "file"
    assert written.read_text() == "data\n"
    assert (written.stat().st_uid, written.parent.stat().st_uid) == (uid, uid)
    assert (tmp_path / "outputs" / "build.1").read_text() == "done=yes\n"


def test_missing_workspace_is_an_error_not_an_empty_mount(
    backend: DockerBackend, busybox_image: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, busybox_image, "true", workspace=tmp_path / "gone")
    with pytest.raises(BackendError) as info:
        backend.start(spec)
    assert "workspace" in str(info.value) and "gone" in str(info.value)
    assert not (tmp_path / "gone").exists()
    assert backend.existing(backend.owner) == []


def test_containers_get_the_operators_isolation_defaults(
    backend: DockerBackend, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    script = ("id -u; touch /etc/x 2>/dev/null && echo root-writable; echo t > /tmp/t; "
              "echo w > written; echo $HOME")
    spec = _spec(tmp_path, busybox_image, script)
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
    docker_client: docker.DockerClient, owner: str, busybox_image: str, tmp_path: Path
) -> None:
    limits = TaskLimits(memory="64m", max_memory="128m", cpus=0.5, max_cpus=1)
    backend = DockerBackend(client=docker_client, owner=owner, limits=limits)
    handle = backend.start(_spec(tmp_path, busybox_image, "true", memory="96m", cpus=1.0))
    assert backend.wait(handle, 60) == 0  # within the bounds: the flow's request applies
    host = docker_client.api.inspect_container(handle)["HostConfig"]
    assert (host["Memory"], host["NanoCpus"]) == (96 * 1024**2, 1_000_000_000)
    with pytest.raises(BackendError) as info:
        backend.start(_spec(tmp_path, busybox_image, "true", memory="1g", task_id="big"))
    assert str(info.value) == (
        'run run-1: the flow: task "big" asks for resources.memory: 1g, above this flowbot\'s '
        "limit of 128m (FLOWBOT_TASK_MAX_MEMORY); ask for at most 128m, or have the operator "
        "raise FLOWBOT_TASK_MAX_MEMORY")
    assert [e.task_id for e in backend.existing(owner)] == ["build"]
