"""Each run's private files: a copy of the repository at the run's commit, and
a directory for the tasks' output files.

Runs never share these and never touch the source (the bot's repository cache
or a developer's working tree); the run directory is removed when the run ends.
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

import git

from runner.errors import FlowbotError

log = logging.getLogger(__name__)

_NO_COMMIT = "cannot check out commit {commit} of {source}: {problem}"


class WorkspaceError(FlowbotError):
    """The repository could not be copied for a run."""


def run_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "work" / run_id


def repo_dir(data_dir: Path, run_id: str) -> Path:
    """Where the run's copy of the repository lives (mounted at the task's workdir)."""
    return run_dir(data_dir, run_id) / "repo"


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
    try:
        archive = git.Repo(source).git.archive(commit, format="tar", stdout_as_string=False)
    except (git.GitCommandError, git.InvalidGitRepositoryError) as exc:
        problem = getattr(exc, "stderr", "") or str(exc)
        raise WorkspaceError(_NO_COMMIT.format(
            commit=commit, source=source, problem=str(problem).strip())) from exc
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    dest.chmod(0o777)  # tasks may write next to the repository's files


def remove_run_dir(data_dir: Path, run_id: str) -> None:
    """Delete the run's files; outputs and logs are already stored elsewhere."""
    shutil.rmtree(run_dir(data_dir, run_id), ignore_errors=True)
