"""Each run's private files: a copy of the repository at the run's commit, and
a directory for the tasks' output files.

Runs never share these and never touch the source (the bot's repository cache
or a developer's working tree); the run directory is removed when the run ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from runner.running.export import _TOO_SLOW, _Tally, _write_file, export_commit
from runner.running.export import ExportLimits as ExportLimits  # callers import it here
from runner.running.export import WorkspaceError as WorkspaceError

log = logging.getLogger(__name__)

_STAGING = ".staging-"  # prefix of directories whose run is not recorded yet


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
    source: Path, commit: str | None, dest: Path, exclude: Iterable[Path] = (),
    limits: ExportLimits | None = None,
) -> None:
    """Fill ``dest`` with ``source`` at ``commit``: a ``git archive`` of that commit,
    or, with no commit or no git repository, a copy of the directory without
    ``.git`` (nor ``dest``, nor the ``exclude`` paths, e.g. a data dir inside the
    tree): a developer's own working tree, copied as it is. Either is refused
    past ``limits`` (WorkspaceError naming the setting; nothing left in ``dest``)."""
    limits = limits or ExportLimits()
    if commit is None or not ((source / ".git").exists() or _is_bare_repo(source)):
        copy_tree(source, dest, {p.resolve() for p in (dest, *exclude)}, limits)
        return  # a working tree, run as it is
    export_commit(source, commit, dest, limits)
    dest.chmod(0o777)  # tasks may write next to the repository's files


def copy_tree(source: Path, dest: Path, skip: set[Path], limits: ExportLimits) -> None:
    """Create ``dest`` holding a copy of the folder ``source`` (links as links, modes
    and times kept) without any ``.git`` nor the resolved paths in ``skip``, counted
    as it is written against ``limits`` like a commit's copy: past a bound it stops,
    ``dest`` is removed and a WorkspaceError gives the commit export's reason."""
    tally = _Tally(limits, str(source))  # the reasons name the folder where a commit goes
    deadline = time.monotonic() + limits.seconds
    dest.mkdir(parents=True, exist_ok=False)
    try:
        _copy_folder(source, dest, skip, tally, deadline)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # a partial copy is worth nothing
        raise


def _copy_folder(source: Path, dest: Path, skip: set[Path], tally: _Tally,
                 deadline: float) -> None:
    with os.scandir(source) as found:
        entries = sorted(found, key=lambda entry: entry.name)
    for entry in entries:
        here = Path(entry.path)
        if entry.name == ".git" or (not entry.is_file(follow_symlinks=False)
                                    and here.resolve() in skip):
            continue
        if time.monotonic() > deadline:
            raise WorkspaceError(_TOO_SLOW.format(commit=tally.commit,
                                                  seconds=tally.limits.seconds))
        tally.entry()
        target = dest / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(here), target)
        elif entry.is_dir(follow_symlinks=False):
            target.mkdir()
            _copy_folder(here, target, skip, tally, deadline)
        elif entry.is_file(follow_symlinks=False):
            info = entry.stat(follow_symlinks=False)
            tally.fits(info.st_size)  # its size already says it cannot fit
            with here.open("rb") as data:
                _write_file(data, target, info.st_mode & 0o777, tally)
            shutil.copystat(here, target, follow_symlinks=False)
        else:
            raise WorkspaceError(f"cannot copy {here} for the run: not a file, folder or "
                                 "link (a socket, pipe or device); remove it or run the "
                                 "flow from a folder without it")
    shutil.copystat(source, dest, follow_symlinks=False)


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
