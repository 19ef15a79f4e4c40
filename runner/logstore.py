"""Attempt logs: files under ``<data_dir>/logs/<run>/<task>.<attempt>.log``,
written through a :class:`StreamMasker` so no secret ever reaches the disk or a
live viewer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from runner.masking import Masker, StreamMasker

# Live viewers get (task id, masked bytes) as they are written.
LogSink = Callable[[str, bytes], None]


def log_path(data_dir: Path, run_id: str, task_id: str, attempt: int) -> Path:
    return data_dir / "logs" / run_id / f"{task_id}.{attempt}.log"


def collect(
    chunks: Iterable[bytes], path: Path, secrets: Iterable[str], task_id: str,
    sink: LogSink | None = None,
) -> None:
    """Write every chunk, masked, to ``path`` (replacing it) and to ``sink``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    masker = StreamMasker(Masker(list(secrets)))
    with path.open("wb") as out:
        for chunk in chunks:
            _emit(out, masker.feed(chunk), task_id, sink)
        _emit(out, masker.flush(), task_id, sink)


def _emit(out: BinaryIO, data: bytes, task_id: str, sink: LogSink | None) -> None:
    if not data:
        return  # the masker is holding bytes back until it can tell
    out.write(data)
    out.flush()
    if sink is not None:
        sink(task_id, data)


def read_log(path: str | Path) -> str:
    """A stored log as text (already masked)."""
    return Path(path).read_text(encoding="utf-8", errors="replace")
