"""Each run's private files: a copy of the repository at the run's commit, and
a directory for the tasks' output files.

Runs never share these and never touch the source (the bot's repository cache
or a developer's working tree); the run directory is removed when the run ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from runner.errors import FlowbotError

log = logging.getLogger(__name__)

_NO_COMMIT = "cannot check out commit {commit} of {source}: {problem}"
_BAD_ENTRY = "cannot check out commit {commit}: {path}: {problem}"
_COPY_CHUNK = 1024 * 1024  # bytes copied at a time from the archive stream
_STAGING = ".staging-"  # prefix of directories whose run is not recorded yet


class WorkspaceError(FlowbotError):
    """The repository could not be copied for a run."""


def run_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "work" / run_id


def repo_dir(data_dir: Path, run_id: str) -> Path:
    """Where the run's copy of the repository lives (mounted at the task's workdir)."""
    return run_dir(data_dir, run_id) / "repo"


def inputs_dir(data_dir: Path, run_id: str) -> Path:
    """Where the run's file inputs live (mounted read-only at ``/inputs``)."""
    return run_dir(data_dir, run_id) / "inputs"


def output_path(data_dir: Path, run_id: str, task_id: str, attempt: int) -> Path:
    return run_dir(data_dir, run_id) / "outputs" / f"{task_id}.{attempt}"


def output_file(data_dir: Path, run_id: str, task_id: str, attempt: int) -> Path:
    """An empty file the attempt appends ``key=value`` lines to."""
    path = output_path(data_dir, run_id, task_id, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    path.chmod(0o666)  # tasks may run as any user inside their image
    return path


def _is_bare_repo(path: Path) -> bool:
    """A bare repository (the bot's mirrors) is archived like a work tree's repository."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def prepare_workspace(
    source: Path, commit: str | None, dest: Path, exclude: Iterable[Path] = ()
) -> None:
    """Fill ``dest`` with ``source`` at ``commit``: a ``git archive`` of that commit,
    or, with no commit or no git repository, a copy of the directory without ``.git``
    (nor ``dest``, nor the ``exclude`` paths, e.g. a data dir inside the tree)."""
    dest.mkdir(parents=True, exist_ok=False)
    if commit is None or not ((source / ".git").exists() or _is_bare_repo(source)):
        skip = {p.resolve() for p in (dest, *exclude)}

        def ignore(folder: str, names: list[str]) -> set[str]:
            return {n for n in names if n == ".git" or (Path(folder) / n).resolve() in skip}

        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True, ignore=ignore)
        return  # a working tree, run as it is
    _export(source, commit, dest)
    dest.chmod(0o777)  # tasks may write next to the repository's files


def _export(source: Path, commit: str, dest: Path) -> None:
    """Stream ``git archive`` of ``commit`` into ``dest``; symbolic links stay links."""
    if commit.startswith("-"):
        raise WorkspaceError(_NO_COMMIT.format(commit=commit, source=source,
                                               problem="not a commit"))
    failure: tarfile.TarError | None = None
    with subprocess.Popen(["git", "-C", str(source), "archive", "--format=tar", commit],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as git_archive:
        assert git_archive.stdout is not None and git_archive.stderr is not None
        try:
            with tarfile.open(fileobj=git_archive.stdout, mode="r|") as tar:
                for member in tar:
                    _place(tar, member, dest, commit)
        except tarfile.TarError as exc:
            failure = exc  # git's own message, read below, says more
        finally:
            git_archive.stdout.close()  # a refused entry stops git too
        problem = git_archive.stderr.read().decode(errors="replace").strip()
        code = git_archive.wait()
    if failure is not None or code != 0:
        raise WorkspaceError(_NO_COMMIT.format(
            commit=commit, source=source, problem=problem or str(failure or f"exit {code}")))


def _place(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, commit: str) -> None:
    """Write one archive entry under ``dest`` without following any link on the host.

    A link is created as it is (its target is only ever resolved inside the
    task's container); a file or directory is refused if its path climbs out of
    ``dest`` or passes through a link (only a hostile archive could hold one).
    """
    parts = Path(member.name).parts
    if not parts or Path(member.name).is_absolute() or ".." in parts:
        raise WorkspaceError(_BAD_ENTRY.format(commit=commit, path=member.name,
                                               problem="the path leaves the repository"))
    parent = dest
    for part in parts[:-1]:
        parent = parent / part
        if not stat.S_ISDIR(os.lstat(parent).st_mode):
            raise WorkspaceError(_BAD_ENTRY.format(commit=commit, path=member.name,
                                                   problem="the path goes through a link"))
    target = parent / parts[-1]
    if member.isdir():
        target.mkdir(mode=0o777, exist_ok=True)
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            raise WorkspaceError(_BAD_ENTRY.format(commit=commit, path=member.name,
                                                   problem="a link where a folder should be"))
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.isreg():
        _write_file(tar.extractfile(member), target, 0o755 if member.mode & 0o111 else 0o644)
    else:  # git archive writes only folders, files and links
        raise WorkspaceError(_BAD_ENTRY.format(commit=commit, path=member.name,
                                               problem="not a file, folder or link"))


def _write_file(data: IO[bytes] | None, target: Path, mode: int) -> None:
    # O_EXCL|O_NOFOLLOW: never write through a link or over an earlier entry
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        if data is not None:
            shutil.copyfileobj(data, out, _COPY_CHUNK)


def staging_dir(data_dir: Path) -> Path:
    """A fresh directory to prepare a run's files in before the run is recorded.

    Preparing first and moving the result into place after the run row exists
    shrinks what a crash can leave behind to a rename: a queued run always has
    its files, and an interrupted preparation leaves only a staging directory,
    which :func:`remove_stale_staging` clears later."""
    path = data_dir / "work" / f"{_STAGING}{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def place_staged(staged: Path, data_dir: Path, run_id: str) -> None:
    """Move a prepared staging directory to be run ``run_id``'s files (one rename)."""
    staged.rename(run_dir(data_dir, run_id))


def remove_stale_staging(data_dir: Path, older_than: float, now: float) -> int:
    """Delete staging directories last touched before ``now - older_than`` (epoch
    seconds): preparations a crash interrupted. Returns how many went."""
    work = data_dir / "work"
    removed = 0
    for path in work.glob(f"{_STAGING}*") if work.is_dir() else ():
        try:
            if path.stat().st_mtime > now - older_than:
                continue  # young: possibly still being prepared
        except OSError:
            continue  # removed meanwhile
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def remove_run_dir(data_dir: Path, run_id: str) -> None:
    """Delete the run's files; outputs and logs are already stored elsewhere."""
    shutil.rmtree(run_dir(data_dir, run_id), ignore_errors=True)
