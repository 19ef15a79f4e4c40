"""Attempt logs: files under ``<data_dir>/logs/<run>/<task>.<attempt>.log``,
written through a :class:`StreamMasker` so no secret ever reaches the disk or a
live viewer.

A log keeps at most ``max_bytes`` (``FLOWBOT_LOG_MAX_BYTES``) per attempt: past
that it ends with :data:`CUT_NOTE` and the rest of the task's output is not
read. A write that fails (a full disk) ends the file where it is; the
:class:`LogResult` says what happened, for the attempt's record.

Reading back: :func:`latest_log` finds a task's latest log (never a path
recorded outside the logs folder) and :func:`log_tail` reads its end only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runner.running.masking import Masker, StreamMasker
from runner.state.records import AttemptRow
from runner.state.store import RunStore

log = logging.getLogger(__name__)

# Live viewers get (task id, masked bytes) as they are written.
LogSink = Callable[[str, bytes], None]

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
CUT_NOTE = ("[flowbot: log cut here at {size} (FLOWBOT_LOG_MAX_BYTES); "
            "the rest of this attempt's output was not kept]\n")
CUT = "log cut at {size} (FLOWBOT_LOG_MAX_BYTES); {dropped} more bytes of output not kept"
UNWRITABLE = "log incomplete: cannot write {path}: {problem}"


@dataclass
class LogResult:
    """What :func:`collect` managed; read by the attempt once the task has ended."""

    stored: int = 0  # bytes written to the file
    cut: bool = False  # the cap was reached
    dropped: int = 0  # bytes of output read past the cap (or a write failure), not kept
    error: str | None = None  # a write failed: the file ends early
    done: bool = False  # the stream was read to its end
    at_line_start: bool = True  # the file so far ends with a whole line


def log_path(data_dir: Path, run_id: str, task_id: str, attempt: int) -> Path:
    return data_dir / "logs" / run_id / f"{task_id}.{attempt}.log"


def size_text(size: int) -> str:
    """``16 MiB``, ``512 KiB`` or ``100 bytes``: how the cap is named to people."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def collect(
    chunks: Iterable[bytes], path: Path, secrets: Iterable[str], task_id: str,
    sink: LogSink | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
    result: LogResult | None = None,
) -> LogResult:
    """Write every chunk, masked, to ``path`` (replacing it) and to ``sink``, up to
    ``max_bytes``; ``result`` (returned) is filled in as it goes. The stream is
    read to its end even past the cap, so the task never waits on its output."""
    result = result if result is not None else LogResult()
    masker = StreamMasker(Masker(list(secrets)))
    out: BinaryIO | None = None
    try:
        out = _open(path, result)
        for chunk in chunks:
            if out is None or result.cut:
                result.dropped += len(chunk)
                continue  # past the cap, or the file cannot be written
            out = _emit(out, masker.feed(chunk), task_id, sink, max_bytes, result, path)
        if out is not None and not result.cut:
            out = _emit(out, masker.flush(), task_id, sink, max_bytes, result, path)
    finally:
        if out is not None:
            _close(out, result, path)
        result.done = True
    return result


def _open(path: Path, result: LogResult) -> BinaryIO | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")
    except OSError as exc:
        _failed(result, path, exc)
        return None


def _close(out: BinaryIO, result: LogResult, path: Path) -> None:
    try:
        out.close()
    except OSError as exc:  # the last buffered bytes could not be written
        _failed(result, path, exc)


def _failed(result: LogResult, path: Path, exc: OSError) -> None:
    result.error = UNWRITABLE.format(path=path, problem=exc.strerror or exc)
    log.warning("attempt log not written", extra={"path": str(path), "reason": result.error})


def _emit(out: BinaryIO, data: bytes, task_id: str, sink: LogSink | None,
          max_bytes: int, result: LogResult, path: Path) -> BinaryIO | None:
    """Write ``data`` within the cap; the file, or None once a write failed."""
    if not data:
        return out  # the masker is holding bytes back until it can tell
    room = max_bytes - result.stored
    if len(data) > room:
        data = _cut(data, room, max_bytes, result)
    try:
        out.write(data)
        out.flush()
    except OSError as exc:
        _failed(result, path, exc)
        result.dropped += len(data)
        try:
            out.close()
        except OSError:
            pass  # already reported; the bytes it held are lost with the rest
        return None
    result.stored += len(data)
    result.at_line_start = data.endswith(b"\n")
    if sink is not None:
        sink(task_id, data)
    return out


def _cut(data: bytes, room: int, max_bytes: int, result: LogResult) -> bytes:
    """What fits of ``data`` (whole lines when there are any) and the note."""
    keep = data.rfind(b"\n", 0, max(room, 0)) + 1
    if keep == 0 and not (result.at_line_start and result.stored):
        keep = max(room, 0)  # a line longer than the cap: cut inside it
    kept = data[:keep]
    result.cut = True
    result.dropped += len(data) - keep
    line_open = kept[-1:] != b"\n" if kept else not result.at_line_start
    note = CUT_NOTE.format(size=size_text(max_bytes)).encode()
    return kept + (b"\n" if line_open else b"") + note


def tail_bytes(path: Path, limit: int) -> tuple[bytes, int]:
    """The last ``limit`` bytes of the file (from a line start when one is near) and
    the file's size, reading no more than that."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        start = max(0, size - limit)
        f.seek(start)
        data = f.read(limit)
    if start > 0:
        newline = data.find(b"\n", 0, 4096)
        if newline >= 0:
            data = data[newline + 1:]  # begin at a whole line
    return data, size


def latest_log(store: RunStore, data_dir: Path, run_id: str,
               task_id: str) -> tuple[Path, AttemptRow] | None:
    """The latest attempt's log file of a task and that attempt, or None if it has none.

    Only the file the runner writes (masked) for that attempt under ``data_dir``
    is given: a path recorded anywhere else is never read.
    """
    attempts = [a for a in store.attempts(run_id, task_id) if a.log_path]
    if not attempts:
        return None  # the task never started
    latest = attempts[-1]
    recorded = Path(latest.log_path or "").resolve()
    if recorded != log_path(data_dir.resolve(), run_id, task_id, latest.attempt).resolve():
        log.warning("log path outside the data dir's logs not served",
                    extra={"run": run_id, "task": task_id})
        return None
    if not recorded.is_file():
        return None  # removed since, e.g. by hand
    return recorded, latest


def log_tail(store: RunStore, data_dir: Path, run_id: str, task_id: str,
             limit: int) -> str | None:
    """The end (at most ``limit`` bytes) of the latest attempt's log of a task, as
    text, or None if it has none."""
    found = latest_log(store, data_dir, run_id, task_id)
    if found is None:
        return None
    try:
        data, _size = tail_bytes(found[0], limit)
    except OSError:
        return None  # removed since, e.g. by hand
    return data.decode("utf-8", errors="replace")


def read_log(path: str | Path) -> str:
    """A stored log as text (already masked)."""
    return Path(path).read_text(encoding="utf-8", errors="replace")
