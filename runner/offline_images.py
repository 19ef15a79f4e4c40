"""Build the images the template flows and the tests use, without a registry.

A machine with registry access simply pulls ``python:3.11-slim`` and
``busybox``. Where no registry answers, :func:`ensure_image` builds a stand-in
under the same name from the host's Debian packages: ``busybox`` from the
static busybox binary (``FROM scratch``), ``python:3.11-slim`` from a minimal
Debian root made with ``mmdebstrap`` and ``docker import``. The engine itself
never does this: it obeys each task's pull policy. Only ``flowbot demo``, CI and
the tests call it.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from runner.errors import BackendError

log = logging.getLogger(__name__)

BUSYBOX = "busybox:latest"
PYTHON = "python:3.11-slim"

_BUSYBOX_BINARY = Path("/bin/busybox")
_BUSYBOX_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
"""


def _build_busybox(client: docker.DockerClient, ref: str) -> None:
    if not _BUSYBOX_BINARY.exists():
        raise BackendError(
            f"cannot build {ref} offline: {_BUSYBOX_BINARY} is missing "
            "(install Debian's busybox-static)"
        )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(_BUSYBOX_DOCKERFILE)
        tar.addfile(info, io.BytesIO(_BUSYBOX_DOCKERFILE))
        tar.add(str(_BUSYBOX_BINARY), arcname="busybox")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)


def _build_python(client: docker.DockerClient, ref: str) -> None:
    if shutil.which("mmdebstrap") is None:
        raise BackendError(
            f"cannot build {ref} offline: mmdebstrap is missing (apt-get install mmdebstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="flowbot-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        command = [
            "mmdebstrap", "--variant=essential", "--mode=root", "--quiet",
            "--include=python3,python-is-python3,ca-certificates",
            "bookworm", str(rootfs),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackendError(f"mmdebstrap failed building {ref}: {done.stderr.strip()[-500:]}")
        with rootfs.open("rb") as data:
            client.api.import_image_from_data(
                data.read(),
                repository=ref.rsplit(":", 1)[0],
                tag=ref.rsplit(":", 1)[1],
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    'CMD ["python3"]',
                ],
            )


_BUILDERS: dict[str, Callable[[docker.DockerClient, str], None]] = {
    BUSYBOX: _build_busybox,
    PYTHON: _build_python,
}


def ensure_image(client: docker.DockerClient, ref: str) -> None:
    """Make ``ref`` present locally: already there, pulled, or built offline."""
    try:
        client.images.get(ref)
        return  # already present
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(ref)
        return  # a registry answered
    except docker.errors.APIError as exc:
        log.info("pull of %s failed (%s); building it offline", ref, exc.explanation)
    builder = _BUILDERS.get(ref)
    if builder is None:
        raise BackendError(
            f"image {ref} is not present, cannot be pulled, and has no offline recipe"
        )
    builder(client, ref)
    log.info("built %s offline", ref)


def ensure_all(client: docker.DockerClient) -> None:
    """Make every image the template repository and the tests use present."""
    for ref in _BUILDERS:
        ensure_image(client, ref)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    ensure_all(docker.from_env())
