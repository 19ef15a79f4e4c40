"""A real, small, size-limited disk for tests of a full data dir: an 8 MiB
tmpfs mounted under /tmp (where the Docker engine's bind mounts see it), and a
way to fill it to the last byte."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _missing


@pytest.fixture(name="small_disk")
def small_disk_fixture() -> Iterator[Path]:
    """An 8 MiB tmpfs, unmounted afterwards (needs root, as ``./dev test`` runs)."""
    if shutil.which("mount") is None:
        _missing("mount")
    where = Path("/tmp") / f"flowbot-small-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        where.rmdir()
        _missing(f"a tmpfs mount ({done.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def fill(path: Path) -> Path:
    """Write ``path`` until its disk is full, to the last byte."""
    for size in (65536, 4096, 512, 1):
        try:
            with path.open("ab", buffering=0) as f:
                while True:
                    f.write(b"\0" * size)
        except OSError:
            pass  # full at this block size: try smaller ones
    return path
