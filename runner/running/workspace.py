"""Each run's private files: a copy of the repository at the run's commit, and
a directory for the tasks' output files.

Runs never share these and never touch the source (the bot's repository cache
or a developer's working tree); the run directory is removed when the run ends.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from runner.running.export import ExportLimits as ExportLimits  # callers import it here
from runner.running.export import WorkspaceError as WorkspaceError
from runner.running.export import export_commit

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
    refused past ``limits`` (WorkspaceError naming the setting; nothing left in
    ``dest``), or, with no commit or no git repository, a copy of the directory
    without ``.git`` (nor ``dest``, nor the ``exclude`` paths, e.g. a data dir
    inside the tree): a developer's own working tree, copied as it is."""
    if commit is None or not ((source / ".git").exists() or _is_bare_repo(source)):
        dest.mkdir(parents=True, exist_ok=False)
        skip = {p.resolve() for p in (dest, *exclude)}

        def ignore(folder: str, names: list[str]) -> set[str]:
            return {n for n in names if n == ".git" or (Path(folder) / n).resolve() in skip}

        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True, ignore=ignore)
        return  # a working tree, run as it is
    export_commit(source, commit, dest, limits or ExportLimits())
    dest.chmod(0o777)  # tasks may write next to the repository's files


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
