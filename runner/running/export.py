"""A run's copy of a commit: ``git archive`` streamed into a folder, within bounds.

The repository is hostile input: a merged commit may hold a 20 GB file, a
million small files or a git bomb (one tree repeated at every level). So the
tree is first measured from git's object store (``git ls-tree -r -t -l``, read
as it streams and stopped at the first bound passed) and refused before
anything is written; the archive is then still counted as it is written (its
headers are never trusted alone) and stopped the moment a bound is passed. Both
git processes are killed once :attr:`ExportLimits.seconds` have passed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from runner.errors import FlowbotError
from runner.running.logstore import size_text

DEFAULT_MAX_BYTES = 1 << 30  # FLOWBOT_WORKSPACE_MAX_BYTES
DEFAULT_MAX_FILES = 100_000  # FLOWBOT_WORKSPACE_MAX_FILES
DEFAULT_SECONDS = 300.0  # FLOWBOT_WORKSPACE_SECONDS
MAX_PATH_BYTES = 4096  # a path or link target; the host's PATH_MAX refuses longer anyway

_NO_COMMIT = "cannot check out commit {commit} of {source}: {problem}"
_BAD_ENTRY = "cannot check out commit {commit}: {path}: {problem}"
_TOO_MANY_BYTES = (
    "the repository at {commit} is larger than FLOWBOT_WORKSPACE_MAX_BYTES ({bound}), the "
    "most a run's copy of it may hold: keep large data out of the repository (a task can "
    "fetch it) or have the operator raise FLOWBOT_WORKSPACE_MAX_BYTES")
_TOO_MANY_FILES = (
    "the repository at {commit} holds more than FLOWBOT_WORKSPACE_MAX_FILES ({bound:,}) "
    "files and folders, the most a run's copy of it may hold: keep generated or vendored "
    "trees out of the repository or have the operator raise FLOWBOT_WORKSPACE_MAX_FILES")
_TOO_SLOW = (
    "copying the repository at {commit} took longer than FLOWBOT_WORKSPACE_SECONDS "
    "({seconds:g} s) and was stopped: make the repository smaller (git count-objects -vH "
    "shows its size) or have the operator raise FLOWBOT_WORKSPACE_SECONDS")
_TOO_LONG = ("the repository at {commit} holds a path or link target longer than "
             f"{MAX_PATH_BYTES:,} bytes" " (at {start!r}); no file system can hold it")
_COPY_CHUNK = 1024 * 1024  # bytes copied at a time from the archive stream
_READ_CHUNK = 64 * 1024  # bytes read at a time from git ls-tree


class WorkspaceError(FlowbotError):
    """The repository could not be copied for a run."""


@dataclass(frozen=True)
class ExportLimits:
    """The most a run's copy of a commit may hold, and take to write."""

    max_bytes: int = DEFAULT_MAX_BYTES  # of file contents (FLOWBOT_WORKSPACE_MAX_BYTES)
    max_files: int = DEFAULT_MAX_FILES  # files, links and folders (FLOWBOT_WORKSPACE_MAX_FILES)
    seconds: float = DEFAULT_SECONDS  # measuring and writing it (FLOWBOT_WORKSPACE_SECONDS)


class _Tally:
    """Bytes and entries counted so far against the bounds of one commit."""

    def __init__(self, limits: ExportLimits, commit: str) -> None:
        self.limits, self.commit = limits, commit
        self.bytes = self.files = 0

    def entry(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise WorkspaceError(_TOO_MANY_FILES.format(commit=self.commit,
                                                        bound=self.limits.max_files))

    def fits(self, size: int) -> None:
        """Refuse ``size`` more bytes if they would pass the bound (nothing counted)."""
        if self.bytes + size > self.limits.max_bytes:
            raise WorkspaceError(_TOO_MANY_BYTES.format(
                commit=self.commit, bound=size_text(self.limits.max_bytes)))

    def add(self, size: int) -> None:
        """Count ``size`` more bytes; refused (nothing counted) past the bound."""
        self.fits(size)
        self.bytes += size

    def path(self, raw: bytes, length: int | None = None) -> None:
        """Refuse a path (or the link at ``raw`` whose target is ``length`` bytes) too long."""
        if (len(raw) if length is None else length) > MAX_PATH_BYTES:
            raise WorkspaceError(_TOO_LONG.format(commit=self.commit,
                                                  start=raw[:60].decode(errors="replace")))


class _Watch:
    """Kills the git processes it is given once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._lock:
            self._procs.append(proc)
            if self.expired:
                proc.kill()  # started after the time was up
        return proc

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for proc in self._procs:
                if proc.poll() is None:
                    proc.kill()

    def stop(self) -> None:
        self._timer.cancel()


def export_commit(source: Path, commit: str, dest: Path, limits: ExportLimits) -> None:
    """Create ``dest`` holding ``commit`` of the repository at ``source``; symbolic
    links stay links. Refused (WorkspaceError, ``dest`` removed) past ``limits``."""
    if commit.startswith("-"):
        raise WorkspaceError(_NO_COMMIT.format(commit=commit, source=source,
                                               problem="not a commit"))
    watch = _Watch(limits.seconds)
    try:
        _measure(source, commit, _Tally(limits, commit), watch)  # refused before writing
        dest.mkdir(parents=True, exist_ok=False)
        try:
            _stream(source, commit, dest, _Tally(limits, commit), watch)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)  # a partial copy is worth nothing
            raise
    except WorkspaceError:
        if watch.expired:  # the kill is what stopped git, whatever it said
            raise WorkspaceError(_TOO_SLOW.format(commit=commit, seconds=limits.seconds)) \
                from None
        raise
    finally:
        watch.stop()


def _measure(source: Path, commit: str, tally: _Tally, watch: _Watch) -> None:
    """Count the commit's tree entries and blob sizes from the object store, as
    ``git ls-tree`` lists them, stopping at the first bound passed."""
    args = ["git", "-C", str(source), "ls-tree", "-r", "-t", "-l", "-z", commit, "--"]
    with watch.spawn(args) as ls_tree:
        assert ls_tree.stdout is not None and ls_tree.stderr is not None
        try:
            _tally_listing(ls_tree.stdout, tally)
        finally:
            ls_tree.stdout.close()  # a refusal stops git too
        problem = ls_tree.stderr.read().decode(errors="replace").strip()
        code = ls_tree.wait()
    if code != 0:
        raise WorkspaceError(_NO_COMMIT.format(commit=commit, source=source,
                                               problem=problem or f"exit {code}"))


def _tally_listing(stream: IO[bytes], tally: _Tally) -> None:
    """Read ``<mode> <type> <object> <size>\\t<path>\\0`` records as they arrive."""
    pending = b""
    while chunk := stream.read(_READ_CHUNK):
        *records, pending = (pending + chunk).split(b"\0")
        tally.path(pending.partition(b"\t")[2])  # an unfinished record is bounded too
        for record in records:
            info, _, path = record.partition(b"\t")
            tally.path(path)
            tally.entry()
            mode, _, rest = info.partition(b" ")
            size = rest.rsplit(b" ", 1)[-1].strip()
            if not size.isdigit():
                continue  # "-": a folder or a submodule
            if mode == b"120000":
                tally.path(path, int(size))  # a link's target is its blob
            tally.add(int(size))


def _stream(source: Path, commit: str, dest: Path, tally: _Tally, watch: _Watch) -> None:
    """Write the ``git archive`` stream of ``commit`` under ``dest`` entry by entry."""
    failure: tarfile.TarError | None = None
    args = ["git", "-C", str(source), "archive", "--format=tar", commit]
    with watch.spawn(args) as git_archive:
        assert git_archive.stdout is not None and git_archive.stderr is not None
        try:
            with tarfile.open(fileobj=git_archive.stdout, mode="r|") as tar:
                for member in tar:
                    tally.entry()
                    _place(tar, member, dest, commit, tally)
        except tarfile.TarError as exc:
            failure = exc  # git's own message, read below, says more
        finally:
            git_archive.stdout.close()  # a refused entry stops git too
        problem = git_archive.stderr.read().decode(errors="replace").strip()
        code = git_archive.wait()
    if failure is not None or code != 0:
        raise WorkspaceError(_NO_COMMIT.format(
            commit=commit, source=source, problem=problem or str(failure or f"exit {code}")))


def _place(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, commit: str,
           tally: _Tally) -> None:
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
        tally.fits(member.size)  # the header already says it cannot fit
        _write_file(tar.extractfile(member), target, 0o755 if member.mode & 0o111 else 0o644,
                    tally)
    else:  # git archive writes only folders, files and links
        raise WorkspaceError(_BAD_ENTRY.format(commit=commit, path=member.name,
                                               problem="not a file, folder or link"))


def _write_file(data: IO[bytes] | None, target: Path, mode: int, tally: _Tally) -> None:
    """Copy ``data`` to a new file, counting each chunk before it is written."""
    # O_EXCL|O_NOFOLLOW: never write through a link or over an earlier entry
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        while data is not None and (chunk := data.read(_COPY_CHUNK)):
            tally.add(len(chunk))
            out.write(chunk)
