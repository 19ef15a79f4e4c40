"""Secrets never reach stored logs or outputs (also base64/url-encoded or split
across lines), flows only see the secrets they declare, and inputs cannot
inject shell."""

from __future__ import annotations

import base64
from pathlib import Path

import docker
import pytest
from enginekit import leftover, make_kit, task
from sqlalchemy.engine import Engine

from runner.errors import InputError, SecretMissing
from runner.state.records import Status

pytestmark = pytest.mark.docker
SECRET = "hunter2-Sup3r/s3cret+value"


def test_secret_values_are_masked_in_logs_and_outputs(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client,
                   secrets={"TOKEN": SECRET, "OTHER": "not-declared-value"})
    run = kit.run({"id": "leaky", "secrets": ["TOKEN"], "tasks": [task(
        "leak", "echo plain {{ secrets.TOKEN }}", 'echo "env $TOKEN"',
        'printf %s "$TOKEN" | base64', 'printf %s "$TOKEN" | sed "s|/|%2F|g; s|+|%2B|g"',
        'printf %s "$TOKEN" | head -c 10; sleep 0.5; printf %s "$TOKEN" | tail -c +11; echo',
        'echo "other=[$OTHER]"',
        'echo "tok=$TOKEN" >> "$FLOWBOT_OUTPUT"',
        env={"TOKEN": "{{ secrets.TOKEN }}"})]})
    assert run.status is Status.SUCCESS, run.error
    log = kit.log(run.id, "leak")
    assert "plain " in log and "other=[]" in log
    for form in (SECRET, base64.b64encode(SECRET.encode()).decode(),
                 SECRET.replace("/", "%2F").replace("+", "%2B")):
        assert form not in log
    assert SECRET not in kit.store.outputs(run.id)["leak"]["tok"]


def test_a_declared_secret_without_a_value_is_refused_before_anything_starts(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client)
    with pytest.raises(SecretMissing, match="API_KEY.*FLOWBOT_SECRET_"):
        kit.submit({"id": "needs-key", "secrets": ["API_KEY"], "tasks": [task("t", "true")]})
    assert kit.store.list_runs() == [] and leftover(docker_client, kit.owner) == []


@pytest.mark.parametrize("value", [
    "$(touch pwned)", "`touch pwned`", '"; touch pwned; echo "', "'; touch pwned; echo '",
    "x\ntouch pwned", "a b  c * ?",
])
def test_input_values_cannot_inject_shell(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient,
    busybox_image: str, value: str
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client)
    run = kit.run({"id": "inject", "inputs": {"x": {"type": "string"}}, "tasks": [task(
        "t", "echo {{ inputs.x }} > /dev/null", 'echo "{{ inputs.x }}" > /dev/null',
        "echo '{{ inputs.x }}' > /dev/null",
        "printf 'got<<EOF\\n%s\\nEOF\\n' {{ inputs.x }} >> \"$FLOWBOT_OUTPUT\"",
        'if [ -e pwned ]; then echo "pwned=yes" >> "$FLOWBOT_OUTPUT"; fi')]}, {"x": value})
    assert run.status is Status.SUCCESS, run.error
    outputs = kit.store.outputs(run.id)["t"]
    assert outputs == {"got": value}


def test_badly_typed_inputs_are_refused_before_anything_is_recorded(
    tmp_path: Path, sqlite_engine: Engine, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    kit = make_kit(tmp_path, sqlite_engine, docker_client)
    with pytest.raises(InputError):
        kit.submit({"id": "typed", "inputs": {"n": {"type": "int", "required": True}},
                    "tasks": [task("t", "true")]}, {"n": "1; rm -rf /"})
    assert kit.store.list_runs() == []
