"""What `flowbot run` shows: log lines prefixed by task id, task state changes
as they happen (coloured on a terminal, plain lines otherwise), and the summary
table at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TextIO

from runner.model.flows import Flow
from runner.state.records import EventKind, RunEvent, Status, TaskRow

_COLOURS = {
    Status.RUNNING: "\033[36m", Status.SUCCESS: "\033[32m", Status.FAILED: "\033[31m",
    Status.TIMED_OUT: "\033[31m", Status.CANCELLED: "\033[33m", Status.SKIPPED: "\033[90m",
}
_RESET = "\033[0m"
_HEADERS = ("task", "state", "duration", "exit", "attempts")


class LiveView:
    """Receives the run's events and log chunks (from several threads) and prints them."""

    def __init__(self, out: TextIO, flow: Flow) -> None:
        self._out = out
        self._tty = out.isatty()
        self._lock = threading.Lock()
        self._partial: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._width = max(len(t.id) for t in (*flow.tasks, *flow.errors))

    def on_event(self, event: RunEvent) -> None:
        if event.kind is not EventKind.TASK or event.task_id is None or event.status is None:
            return  # run-level events are reported by the summary
        status = event.status
        if status is Status.RUNNING and event.task_id in self._started:
            return  # a retry: the attempt lines say enough
        now = time.monotonic()
        detail = ""
        if status is Status.RUNNING:
            self._started[event.task_id] = now
        elif event.task_id in self._started:
            detail = f" ({now - self._started[event.task_id]:.1f}s)"
        self._line(f"--> {event.task_id} {self._paint(status)}{detail}")

    def on_log(self, task_id: str, data: bytes) -> None:
        with self._lock:
            text = self._partial.pop(task_id, "") + data.decode("utf-8", errors="replace")
            *lines, rest = text.split("\n")
            if rest:
                self._partial[task_id] = rest
            for line in lines:
                self._write(f"{task_id:<{self._width}} | {line}")

    def flush(self) -> None:
        with self._lock:
            for task_id, rest in sorted(self._partial.items()):
                self._write(f"{task_id:<{self._width}} | {rest}")
            self._partial.clear()

    def _line(self, text: str) -> None:
        with self._lock:
            self._write(text)

    def _write(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def _paint(self, status: Status) -> str:
        if not self._tty:
            return status.value
        return f"{_COLOURS.get(status, '')}{status.value}{_RESET}"


def summary_table(rows: Sequence[TaskRow]) -> str:
    """The end-of-run table: task, state, duration, exit code, attempts."""
    body = [(
        r.task_id + (" (errors)" if r.handler else ""), r.status.value,
        "-" if r.duration is None else f"{r.duration:.1f}s",
        "-" if r.exit_code is None else str(r.exit_code), str(r.attempts),
    ) for r in rows]
    widths = [max(len(row[i]) for row in (_HEADERS, *body)) for i in range(len(_HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in (_HEADERS, *body)]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
