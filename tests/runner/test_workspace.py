"""Each run gets a private copy of the repository at its commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import git
import pytest

from runner.running import export
from runner.running.workspace import (
    ExportLimits,
    WorkspaceError,
    output_file,
    prepare_workspace,
    remove_run_dir,
    repo_dir,
)
from tests.runner.repokit import committed


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


KIB = 1024
SMALL = ExportLimits(max_bytes=64 * KIB, max_files=20, seconds=60.0)


def _git(source: Path, *args: str, data: bytes = b"") -> str:
    done = subprocess.run(["git", "-C", str(source), *args], input=data,
                          capture_output=True, check=True)
    return done.stdout.decode().strip()


def _committed(tmp_path: Path, files: dict[str, bytes], message: str = "files") -> tuple[Path, str]:
    source = tmp_path / "bounded"
    return source, committed(source, files, message)


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def test_a_repository_over_the_byte_bound_is_refused_before_anything_is_written(
    tmp_path: Path
) -> None:
    source, commit = _committed(tmp_path, {"small.txt": b"ok\n", "big.bin": b"\0" * (1 << 20)})
    dest = tmp_path / "dest"
    with pytest.raises(WorkspaceError) as refused:
        prepare_workspace(source, commit, dest, limits=SMALL)
    assert str(refused.value) == (
        f"the repository at {commit} is larger than FLOWBOT_WORKSPACE_MAX_BYTES (64 KiB), the "
        "most a run's copy of it may hold: keep large data out of the repository (a task can "
        "fetch it) or have the operator raise FLOWBOT_WORKSPACE_MAX_BYTES")
    assert not dest.exists()


def test_the_archive_is_counted_as_it_is_written_whatever_the_tree_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export-subst grows a 2 KiB file to 2 MiB in the archive: the object store's
    sizes pass, the stream is stopped at the bound and the partial copy removed."""
    source, commit = _committed(
        tmp_path, {".gitattributes": b"grow.txt export-subst\n",
                   "grow.txt": b"$Format:%B$" * 200}, message="m" * 10_000)
    assert int(_git(source, "cat-file", "-s", f"{commit}:grow.txt")) < 64 * KIB
    dest = tmp_path / "dest"
    on_disk: list[int] = []  # what was on disk as each file's copy ended
    real_write = export._write_file

    def write(data: Any, target: Path, mode: int, tally: Any) -> None:
        try:
            real_write(data, target, mode, tally)
        finally:
            on_disk.append(_disk_bytes(dest))

    monkeypatch.setattr(export, "_write_file", write)  # observed only; the copy is real
    with pytest.raises(WorkspaceError, match="larger than FLOWBOT_WORKSPACE_MAX_BYTES"):
        prepare_workspace(source, commit, dest, limits=SMALL)
    assert on_disk and max(on_disk) <= 64 * KIB
    assert not dest.exists()


def test_a_repository_over_the_file_bound_is_refused(tmp_path: Path) -> None:
    files = {f"many/{n:03}.txt": b"x" for n in range(30)}
    source, commit = _committed(tmp_path, files)
    with pytest.raises(WorkspaceError) as refused:
        prepare_workspace(source, commit, tmp_path / "dest", limits=SMALL)
    assert str(refused.value) == (
        f"the repository at {commit} holds more than FLOWBOT_WORKSPACE_MAX_FILES (20) files "
        "and folders, the most a run's copy of it may hold: keep generated or vendored trees "
        "out of the repository or have the operator raise FLOWBOT_WORKSPACE_MAX_FILES")
    assert not (tmp_path / "dest").exists()


def test_a_git_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    """Ten entries of the same tree at each of six levels: a million files from a
    few hundred bytes of objects. Measuring stops at the bound."""
    source = tmp_path / "bomb"
    repo = git.Repo.init(source)
    entry = f"100644 blob {_git(source, 'hash-object', '-w', '--stdin', data=b'lol')}"
    for _ in range(6):
        tree = _git(source, "mktree", data="".join(
            f"{entry}\t{n}\n" for n in range(10)).encode())
        entry = f"040000 tree {tree}"
    commit = repo.git.commit_tree(tree, "-m", "bomb")
    with pytest.raises(WorkspaceError, match=r"more than FLOWBOT_WORKSPACE_MAX_FILES \(1,000\)"):
        prepare_workspace(source, commit, tmp_path / "dest",
                          limits=ExportLimits(max_files=1000))
    assert not (tmp_path / "dest").exists()


def test_an_archive_that_hangs_is_killed_after_the_time_bound(tmp_path: Path) -> None:
    """An object git blocks on reading (a named pipe in place of a loose object)."""
    source, commit = _committed(tmp_path, {"stuck.txt": b"never read\n"})
    blob = _git(source, "rev-parse", f"{commit}:stuck.txt")
    loose = source / ".git" / "objects" / blob[:2] / blob[2:]
    loose.unlink()
    os.mkfifo(loose)
    with pytest.raises(WorkspaceError) as refused:
        prepare_workspace(source, commit, tmp_path / "dest",
                          limits=ExportLimits(seconds=0.5))
    assert str(refused.value) == (
        f"copying the repository at {commit} took longer than FLOWBOT_WORKSPACE_SECONDS "
        "(0.5 s) and was stopped: make the repository smaller (git count-objects -vH shows "
        "its size) or have the operator raise FLOWBOT_WORKSPACE_SECONDS")
    assert not (tmp_path / "dest").exists()


def test_a_repository_exactly_at_the_bounds_is_copied(tmp_path: Path) -> None:
    # 19 files and their folder: 20 entries; 64 KiB of contents in all
    files = {f"d/{n:02}": b"y" * (64 * KIB // 19) for n in range(19)}
    files["d/00"] += b"y" * (64 * KIB - sum(len(v) for v in files.values()))
    source, commit = _committed(tmp_path, files)
    prepare_workspace(source, commit, tmp_path / "dest", limits=SMALL)
    assert _disk_bytes(tmp_path / "dest") == 64 * KIB
    assert len(list((tmp_path / "dest").rglob("*"))) == 20


def test_a_link_to_an_overlong_target_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "longlink"
    repo = git.Repo.init(source)
    target = _git(source, "hash-object", "-w", "--stdin", data=b"a/" * 3000)
    tree = _git(source, "mktree", data=f"120000 blob {target}\tfar\n".encode())
    commit = repo.git.commit_tree(tree, "-m", "link")
    with pytest.raises(WorkspaceError, match="path or link target longer than 4,096 bytes"):
        prepare_workspace(source, commit, tmp_path / "dest")
