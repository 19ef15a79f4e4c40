"""Each run gets a private copy of the repository at its commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import git
import pytest

from runner.running.workspace import (
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


def _linked_repo(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose tree holds links out of it, and files sorted after them."""
    source = tmp_path / "linked"
    repo = git.Repo.init(source)
    (source / "a.txt").write_text("first\n")
    (source / "data.csv").symlink_to("/etc/shadow")
    (source / "up").symlink_to("../../../")
    (source / "rel").symlink_to("a.txt")
    (source / "sub").mkdir()
    (source / "sub" / "zz.txt").write_text("last\n")
    (source / "zz.sh").write_text("echo hi\n")
    (source / "zz.sh").chmod(0o755)
    repo.index.add(["a.txt", "data.csv", "up", "rel", "sub/zz.txt", "zz.sh"])
    return source, repo.index.commit("links").hexsha


def test_links_are_exported_as_links_and_never_followed(tmp_path: Path) -> None:
    source, commit = _linked_repo(tmp_path)
    dest = tmp_path / "work" / "run" / "repo"
    prepare_workspace(source, commit, dest)
    assert os.readlink(dest / "data.csv") == "/etc/shadow"
    assert os.readlink(dest / "up") == "../../../"
    assert os.readlink(dest / "rel") == "a.txt"
    assert (dest / "sub" / "zz.txt").read_text() == "last\n"  # nothing after a link is lost
    assert os.access(dest / "zz.sh", os.X_OK)
    assert sorted(p.name for p in (tmp_path / "work" / "run").iterdir()) == ["repo"]


def test_a_hostile_archive_cannot_write_through_a_link(tmp_path: Path) -> None:
    """A tree where a path runs through a link (git fsck would refuse it) stops the export."""
    source = tmp_path / "hostile"
    repo = git.Repo.init(source)
    outside = tmp_path / "outside"
    outside.mkdir()
    def run(*args: str, data: bytes) -> str:
        done = subprocess.run(["git", "-C", str(source), *args], input=data,
                              capture_output=True, check=True)
        return done.stdout.decode().strip()

    blob = run("hash-object", "-w", "--stdin", data=b"owned\n")
    link = run("hash-object", "-w", "--stdin", data=str(outside).encode())
    inner = run("mktree", data=f"100644 blob {blob}\tpwned\n".encode())
    # "esc" is a link, and then a folder of the same name; git archive writes both.
    top = run("mktree", data=f"120000 blob {link}\tesc\n040000 tree {inner}\tesc\n".encode())
    commit = repo.git.commit_tree(top, "-m", "hostile")
    with pytest.raises(WorkspaceError, match="esc: a link where a folder should be"):
        prepare_workspace(source, commit, tmp_path / "dest")
    assert list(outside.iterdir()) == []
