"""Each run gets a private copy of the repository at its commit."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from runner.workspace import (
    WorkspaceError,
    output_file,
    prepare_workspace,
    remove_run_dir,
    repo_dir,
)


def _repo(tmp_path: Path) -> tuple[git.Repo, str, str]:
    source = tmp_path / "source"
    repo = git.Repo.init(source)
    (source / "data.csv").write_text("v1\n")
    (source / "flows").mkdir()
    (source / "flows" / "a.yml").write_text("id: a\n")
    repo.index.add(["data.csv", "flows/a.yml"])
    first = repo.index.commit("first").hexsha
    (source / "data.csv").write_text("v2\n")
    repo.index.add(["data.csv"])
    second = repo.index.commit("second").hexsha
    return repo, first, second


def test_a_commit_is_checked_out_whatever_the_working_tree_holds(tmp_path: Path) -> None:
    repo, first, second = _repo(tmp_path)
    source = Path(repo.working_dir)
    (source / "data.csv").write_text("uncommitted\n")
    prepare_workspace(source, first, tmp_path / "one")
    prepare_workspace(source, second, tmp_path / "two")
    assert (tmp_path / "one" / "data.csv").read_text() == "v1\n"
    assert (tmp_path / "two" / "data.csv").read_text() == "v2\n"
    assert (tmp_path / "one" / "flows" / "a.yml").exists()
    assert not (tmp_path / "one" / ".git").exists()
    (tmp_path / "one" / "data.csv").write_text("changed by a task\n")
    assert (tmp_path / "two" / "data.csv").read_text() == "v2\n"
    assert (source / "data.csv").read_text() == "uncommitted\n"


def test_without_a_commit_the_working_tree_is_copied_without_git(tmp_path: Path) -> None:
    repo, _, _ = _repo(tmp_path)
    source = Path(repo.working_dir)
    (source / "data.csv").write_text("local edit\n")
    prepare_workspace(source, None, tmp_path / "copy")
    assert (tmp_path / "copy" / "data.csv").read_text() == "local edit\n"
    assert not (tmp_path / "copy" / ".git").exists()


def test_an_unknown_commit_is_a_clear_error(tmp_path: Path) -> None:
    repo, _, _ = _repo(tmp_path)
    with pytest.raises(WorkspaceError, match="cannot check out commit deadbeef"):
        prepare_workspace(Path(repo.working_dir), "deadbeef", tmp_path / "x")


def test_run_files_are_private_and_removed_together(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "plain"
    source.mkdir()
    (source / "f").write_text("x")
    prepare_workspace(source, None, repo_dir(data, "r1"))
    out = output_file(data, "r1", "build", 2)
    assert out.read_bytes() == b"" and out.name == "build.2"
    remove_run_dir(data, "r1")
    assert not repo_dir(data, "r1").exists() and not out.exists()
    assert (source / "f").exists()


def test_a_data_dir_inside_the_working_tree_is_not_copied(tmp_path: Path) -> None:
    data = tmp_path / ".flowbot"
    (data / "logs").mkdir(parents=True)
    (tmp_path / "f").write_text("x")
    dest = repo_dir(data, "r1")
    prepare_workspace(tmp_path, None, dest, exclude=[data])
    assert sorted(p.name for p in dest.iterdir()) == ["f"]
