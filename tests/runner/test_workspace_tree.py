"""A working tree (no commit) is copied for a run within the same bounds as a
commit: counted as it is written, stopped at the bound, the partial copy removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.running.workspace import ExportLimits, WorkspaceError, prepare_workspace


def _tree(root: Path) -> Path:
    """Three 400-byte files (one executable), a folder, a link and a .git folder."""
    root.mkdir()
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "a.txt").write_bytes(b"a" * 400)
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_bytes(b"b" * 400)
    (root / "sub" / "run.sh").write_bytes(b"#" * 400)
    (root / "sub" / "run.sh").chmod(0o755)
    (root / "link").symlink_to("/etc/passwd")
    return root


def test_a_tree_within_the_bounds_is_copied_as_it_is(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    dest = tmp_path / "dest"
    # 3 files, 1 folder and 1 link (the .git folder is not copied nor counted)
    prepare_workspace(source, None, dest, limits=ExportLimits(max_bytes=1200, max_files=5))
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "a.txt", "link", "sub", "sub/b.txt", "sub/run.sh"]
    assert os.readlink(dest / "link") == "/etc/passwd"  # a link, never followed
    assert (dest / "sub" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "a.txt").read_bytes() == b"a" * 400


@pytest.mark.parametrize(("limits", "reason"), [
    # every file fits alone: the sum, counted while copying, passes the bound
    (ExportLimits(max_bytes=1000), "is larger than FLOWBOT_WORKSPACE_MAX_BYTES (1000 bytes)"),
    (ExportLimits(max_files=4), "holds more than FLOWBOT_WORKSPACE_MAX_FILES (4) files"),
], ids=["bytes", "files"])
def test_a_tree_over_a_bound_stops_and_leaves_nothing(
    tmp_path: Path, limits: ExportLimits, reason: str
) -> None:
    source = _tree(tmp_path / "src")
    dest = tmp_path / "dest"
    with pytest.raises(WorkspaceError) as refused:
        prepare_workspace(source, None, dest, limits=limits)
    assert str(refused.value).startswith(f"the repository at {source} {reason}")
    assert not dest.exists()


def test_a_copy_past_the_time_bound_is_stopped(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    dest = tmp_path / "dest"
    with pytest.raises(WorkspaceError) as refused:  # a nanosecond: past before the first entry
        prepare_workspace(source, None, dest, limits=ExportLimits(seconds=1e-9))
    assert "took longer than FLOWBOT_WORKSPACE_SECONDS" in str(refused.value)
    assert not dest.exists()


def test_a_pipe_in_the_tree_is_refused_naming_it(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    os.mkfifo(source / "sub" / "pipe")
    dest = tmp_path / "dest"
    with pytest.raises(WorkspaceError, match=r"cannot copy .*/sub/pipe for the run: not a "
                                             r"file, folder or link"):
        prepare_workspace(source, None, dest)
    assert not dest.exists()
