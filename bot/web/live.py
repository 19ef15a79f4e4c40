"""A run page, live: ``GET /runs/<id>/live``, server-sent events (``sse-starlette``).

One stream per page carries, while the run lasts:

- ``state``: the run's status block (badge, error, buttons, task graph, task table) rendered
  again whenever a run or task state changes — the page swaps it in;
- ``log``: new bytes of a task's latest attempt log, as JSON
  ``{"task", "attempt", "text"}``, read from the end of what was sent before. Its
  event id is the cursor: each task's attempt and byte offset
  (``build=1:2048&test=1:0``), so a reconnecting browser sends it back as
  ``Last-Event-ID`` and resumes where it stopped, losing and repeating nothing;
- ``end``: the run is over and every log was sent; the page closes the stream.

The page hands its first cursor in ``?from=`` (what it showed already). Logs are
read from the files the runner writes (masked), never past a UTF-8 character
boundary, at most :data:`CHUNK_BYTES` per task per poll. The stream polls the
store and the files every :data:`POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bot.services import Services
from runner.running.logstore import log_path
from runner.state.records import AttemptRow

POLL_SECONDS = 0.2
CHUNK_BYTES = 64 * 1024
Cursor = dict[str, tuple[int, int]]  # task id -> (attempt, byte offset)


def cursor_text(cursor: Mapping[str, tuple[int, int]]) -> str:
    return urlencode(sorted((task, f"{a}:{o}") for task, (a, o) in cursor.items()))


def parse_cursor(text: str | None) -> Cursor:
    """A cursor from ``cursor_text`` (a bad part is left out: read from the start)."""
    found: Cursor = {}
    for task, value in parse_qsl(text or ""):
        attempt, _, offset = value.partition(":")
        if attempt.isdigit() and offset.isdigit():
            found[task] = (int(attempt), int(offset))
    return found


def whole_chars(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut at its end (sent with the next read)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data  # ASCII: nothing is cut
        if byte >= 0xC0:  # a lead byte: is its character whole?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data  # not UTF-8 anyway: sent as it is (shown with replacements)


def latest_attempts(attempts: list[AttemptRow], data_dir: Path) -> dict[str, tuple[int, Path]]:
    """Each task's latest attempt with a log, and that log's file (only where the
    runner writes it: a path recorded elsewhere is never read)."""
    latest: dict[str, tuple[int, Path]] = {}
    for row in attempts:
        if not row.log_path:
            continue
        path = log_path(data_dir, row.run_id, row.task_id, row.attempt)
        if Path(row.log_path).resolve() == path.resolve():
            if row.task_id not in latest or latest[row.task_id][0] < row.attempt:
                latest[row.task_id] = (row.attempt, path)
    return latest


def read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return whole_chars(f.read(CHUNK_BYTES))
    except OSError:
        return b""  # not written yet, or removed


class RunFeed:
    """What one viewer's stream has sent: the state shown and each log's cursor."""

    def __init__(self, services: Services, run_id: str, cursor: Cursor,
                 render_state: Callable[[], tuple[str, bool]]) -> None:
        self._services = services
        self._run_id = run_id
        self.cursor = cursor
        self._render_state = render_state  # (html, over)
        self._shown: str | None = None

    def poll(self) -> list[dict[str, Any]]:
        """The events due now (blocking: run it in a thread)."""
        events: list[dict[str, Any]] = []
        html, over = self._render_state()
        if html != self._shown:
            self._shown = html
            events.append({"event": "state", "data": html})
        attempts = self._services.store.attempts(self._run_id)
        sent_log = False
        for task, (attempt, path) in sorted(latest_attempts(
                attempts, self._services.settings.data_dir).items()):
            had_attempt, offset = self.cursor.get(task, (attempt, 0))
            if had_attempt != attempt:
                offset = 0  # a new attempt: its log from the start
            data = read_from(path, offset)
            if not data and had_attempt == attempt and task in self.cursor:
                continue
            self.cursor[task] = (attempt, offset + len(data))
            if data or had_attempt != attempt:
                sent_log = sent_log or bool(data)
                events.append({"event": "log", "id": cursor_text(self.cursor),
                               "data": json.dumps({"task": task, "attempt": attempt,
                                                   "fresh": had_attempt != attempt,
                                                   "text": data.decode("utf-8", "replace")})})
        if over and not sent_log:
            events.append({"event": "end", "data": "over"})
        return events


def live_response(request: Request, feed: RunFeed) -> EventSourceResponse:
    """The stream of ``feed`` until the run is over or the viewer leaves."""

    async def stream() -> AsyncIterator[dict[str, Any]]:
        while not await request.is_disconnected():
            events = await run_in_threadpool(feed.poll)
            for event in events:
                yield event
                if event["event"] == "end":
                    return
            await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})
