"""File inputs: copy each run's files next to its workspace, and say where tasks see them.

A file input's value arrives as a :class:`~runner.running.inputs.FileSource`
(a repository path, or a file already on this machine). :func:`stage_files`
copies it into the run's ``inputs/`` folder — capped in size, never through a
link of the repository — and replaces it with a record of what was copied
(where from, size, sha256): that record is what the run stores and the run
page shows. :func:`task_values` turns records into the path tasks read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from runner.errors import InputError
from runner.running.inputs import FileSource

DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # FLOWBOT_INPUT_FILE_MAX_BYTES
_CHUNK = 1024 * 1024
NOT_IN_REPO = "{label}: no such file in the repository at the run's commit"
NOT_A_FILE = "{label}: not a file"
THROUGH_LINK = "{label}: the path goes through a symbolic link; give the file's own path"
TOO_LARGE = ("{label}: larger than {limit:,} bytes, the most a file input may hold "
             "(FLOWBOT_INPUT_FILE_MAX_BYTES)")
UNREADABLE = "{label}: cannot read it: {reason}"


def is_record(value: object) -> bool:
    """A staged file input's stored value (see :func:`stage_files`)."""
    return isinstance(value, dict) and "source" in value


def unstaged(values: Mapping[str, object]) -> dict[str, object]:
    """``values`` storable as they are, for a run decided before its files were copied."""
    return {name: {"source": v.label} if isinstance(v, FileSource) else v
            for name, v in values.items()}


def stage_files(values: Mapping[str, object], repo: Path, dest: Path,
                max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, object]:
    """Copy every file input of ``values`` to ``dest/<name>`` (read-only), reading a
    repository path under ``repo`` without following links. Returns ``values``
    with each file replaced by ``{"source", "size", "sha256"}``; raises
    :class:`InputError` naming the input when a file is missing, a link, or too large."""
    staged: dict[str, object] = {}
    for name, value in values.items():
        if not isinstance(value, FileSource):
            staged[name] = value
            continue
        dest.mkdir(mode=0o755, exist_ok=True)
        try:
            with _open(value, repo) as source:
                size, digest = _copy(source, dest / name, max_bytes)
        except _Refused as exc:
            raise InputError(name, exc.problem.format(label=value.label, limit=max_bytes)) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise InputError(name, UNREADABLE.format(label=value.label, reason=reason)) from None
        staged[name] = {"source": value.label, "size": size, "sha256": digest}
    return staged


def task_values(values: Mapping[str, Any], host_dir: Path,
                mount: str | None) -> dict[str, Any]:
    """``values`` as tasks see them: each file record becomes its path, at ``mount``
    in a container, or on the host (``host_dir``) when the backend has no mount."""
    return {name: (f"{mount}/{name}" if mount else str(host_dir / name))
            if is_record(value) else value for name, value in values.items()}


class _Refused(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _open(source: FileSource, repo: Path) -> IO[bytes]:
    if source.local is not None:
        if not source.local.is_file():
            raise _Refused(NOT_A_FILE)
        return source.local.open("rb")  # the caller's own file (or a download)
    assert source.repo_path is not None
    parts = Path(source.repo_path).parts
    folder = repo
    for part in parts[:-1]:  # lstat each step: a link is never followed on the host
        folder = folder / part
        _must_be(folder, stat.S_ISDIR)
    target = folder / parts[-1]
    _must_be(target, stat.S_ISREG)
    fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(fd, "rb")


def _must_be(path: Path, kind: Any) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise _Refused(NOT_IN_REPO) from None
    if stat.S_ISLNK(mode):
        raise _Refused(THROUGH_LINK)
    if not kind(mode):
        raise _Refused(NOT_IN_REPO if kind is stat.S_ISDIR else NOT_A_FILE)


def _copy(source: IO[bytes], target: Path, max_bytes: int) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise _Refused(TOO_LARGE)
            digest.update(chunk)
            out.write(chunk)
    target.chmod(0o444)  # read-only for the process backend too
    return size, digest.hexdigest()
