"""The engine CI starts really runs containers, before any flow is involved."""

import docker
import pytest


@pytest.mark.docker
def test_a_real_container_runs_and_reports(
    docker_client: docker.DockerClient, busybox_image: str
) -> None:
    container = docker_client.containers.run(
        busybox_image, ["sh", "-c", "echo smoke $((6*7)); exit 3"], detach=True,
        labels={"flowbot.test": "smoke"},
    )
    try:
        result = container.wait(timeout=60)
        assert result["StatusCode"] == 3
        assert container.logs() == b"smoke 42\n"
    finally:
        container.remove(force=True)
