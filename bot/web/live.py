"""A run page, live: ``GET /runs/<id>/live``, server-sent events (``sse-starlette``).

One stream per page carries, while the run lasts:

- ``state``: the run's status block (badge, error, buttons, task graph, task table) rendered
  again whenever a run or task state changes — the page swaps it in;
- ``timeline``: the attempts' timeline (:mod:`bot.web.gantt_svg`) drawn again when an
  attempt starts or ends, and at most every :data:`TIMELINE_SECONDS` while bars run;
- ``log``: new bytes of a task's latest attempt log, as JSON
  ``{"task", "attempt", "text"}``, read from the end of what was sent before. Its
  event id is the cursor: each task's attempt and byte offset
  (``build=1:2048&test=1:0``), so a reconnecting browser sends it back as
  ``Last-Event-ID`` and resumes where it stopped, losing and repeating nothing;
- ``end``: the run is over and every log was sent; the page closes the stream.

The page hands its first cursor in ``?from=`` (what it showed already).

However many people watch a run, ONE :class:`RunPoller` (a thread, started by the
first viewer, gone after the last leaves) reads the store and the new log bytes
once every :data:`POLL_SECONDS` and fans the events out to every viewer's queue. A
viewer behind the shared cursor (a reconnect, a page loaded earlier) gets its
catch-up bytes read for it alone, at most :data:`CHUNK_BYTES` per task per tick,
then joins the shared stream; one ahead of it gets only the bytes it lacks. The
state block differs per viewer only by its buttons: it is drawn once per distinct
set of them per change. Every log byte is read by :func:`read_from`, nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request

from bot.services import Services
from runner.running.logstore import LogKey, LogStore
from runner.state.records import AttemptRow, RunRecord, TaskRow

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
TIMELINE_SECONDS = 1.0  # running bars grow with time: drawn again at most this often
CHUNK_BYTES = 64 * 1024
WAIT_SECONDS = 1.0  # a stream looks at its connection at least this often
Cursor = dict[str, tuple[int, int]]  # task id -> (attempt, byte offset)
Event = dict[str, Any]


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


@dataclass(frozen=True)
class LogRef:
    """One attempt's log: what :func:`read_from` needs to find its bytes."""

    run_id: str
    task_id: str
    attempt: int
    logs: LogStore  # files, or the database on PostgreSQL (any replica reads any log)


def latest_attempts(attempts: tuple[AttemptRow, ...] | list[AttemptRow],
                    logs: LogStore) -> dict[str, LogRef]:
    """Each task's latest attempt with a log (only one the log store recorded: a path
    recorded elsewhere is never read)."""
    return {task: LogRef(row.run_id, row.task_id, row.attempt, logs)
            for task, row in logs.latest_attempts(attempts).items()}


def read_from(ref: LogRef, offset: int, limit: int = CHUNK_BYTES) -> bytes:
    """At most ``limit`` bytes of ``ref``'s log from byte ``offset``, ending on a whole
    UTF-8 character. The live view's only read of log bytes (nothing yet: empty)."""
    key = LogKey(ref.run_id, ref.task_id, ref.attempt)
    return whole_chars(ref.logs.read(key, offset, offset + limit))


@dataclass(frozen=True)
class Snapshot:
    """What one tick read of the store."""

    run: RunRecord | None
    tasks: tuple[TaskRow, ...]
    attempts: tuple[AttemptRow, ...]

    @property
    def over(self) -> bool:
        return self.run is None or self.run.status.terminal


Render = Callable[[Snapshot], str]


@dataclass(frozen=True)
class _Part:
    """This tick's new bytes of a task's log, from byte ``start``."""

    ref: LogRef
    start: int
    data: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)


class Watcher:
    """One viewer's stream: its cursor, what it was shown, its queue of event batches.
    ``state`` draws its status block; ``state_key`` tells which viewers share it."""

    def __init__(self, cursor: Cursor, state: Render, state_key: Hashable) -> None:
        self.cursor: Cursor = dict(cursor)
        self.state = state
        self.state_key = state_key
        self.shown_state: str | None = None
        self.shown_timeline: str | None = None
        self.done = False
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def deliver(self, events: list[Event]) -> None:
        """Hand ``events`` to the viewer's loop (called from the poller's thread)."""
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, events)
        except RuntimeError:
            self.done = True  # its loop is closed: nobody reads this queue any more


class RunPoller:
    """The one reader of a run for all its viewers (see the module's docstring).
    ``ticks``, ``store_reads``, ``log_reads`` (shared) and ``catchup_reads`` (for one
    viewer behind) count what it did."""

    def __init__(self, hub: LiveHub, run_id: str, timeline: Render) -> None:
        self.run_id = run_id
        self.watchers: list[Watcher] = []
        self.cursor: Cursor = {}  # how far the shared stream has read each log
        self.ticks = self.store_reads = self.log_reads = self.catchup_reads = 0
        self._hub = hub
        self._timeline_of = timeline
        self._timeline: str | None = None
        self._drawn_at = 0.0
        self._seen: Snapshot | None = None
        self._states: dict[Hashable, str] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"live-{run_id}")

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while (watchers := self._hub.still_watched(self)) is not None:
            try:
                for watcher, events in self.tick(watchers):
                    watcher.deliver(events)
            except Exception:  # a bad tick must not leave the viewers waiting forever
                log.exception("live view of a run failed a tick", extra={"run": self.run_id})
            time.sleep(POLL_SECONDS)

    def tick(self, watchers: list[Watcher]) -> list[tuple[Watcher, list[Event]]]:
        """Read the store and the new log bytes once; each viewer's events."""
        self.ticks += 1
        snap = self._read_store()
        parts = self._read_logs(snap, watchers)
        self._redraw(snap)
        due = [(w, self._events_for(w, snap, parts)) for w in watchers if not w.done]
        return [(w, events) for w, events in due if events]

    def _read_store(self) -> Snapshot:
        self.store_reads += 1
        store = self._hub.services.store
        run = store.get_run(self.run_id)
        if run is None:
            return Snapshot(None, (), ())
        return Snapshot(run, tuple(store.task_rows(run.id)), tuple(store.attempts(run.id)))

    def _read_logs(self, snap: Snapshot, watchers: list[Watcher]) -> dict[str, _Part]:
        parts: dict[str, _Part] = {}
        for task, ref in latest_attempts(snap.attempts, self._hub.services.logs).items():
            attempt, offset = self.cursor.get(task, (0, 0))
            if attempt != ref.attempt:  # new to the stream: start where its viewers are
                offset = max((o for w in watchers for a, o in [w.cursor.get(task, (0, 0))]
                              if a == ref.attempt), default=0)
            self.log_reads += 1
            data = read_from(ref, offset)
            self.cursor[task] = (ref.attempt, offset + len(data))
            parts[task] = _Part(ref, offset, data)
        return parts

    def _redraw(self, snap: Snapshot) -> None:
        """Forget drawn state blocks when states changed; draw the timeline again."""
        changed = self._seen is None or (snap.run, snap.tasks) != (self._seen.run,
                                                                   self._seen.tasks)
        if changed:
            self._states.clear()
        moved = self._seen is None or changed or snap.attempts != self._seen.attempts
        now = time.monotonic()
        if moved or (not snap.over and now - self._drawn_at >= TIMELINE_SECONDS):
            self._timeline, self._drawn_at = self._timeline_of(snap), now
        self._seen = snap

    def _state_for(self, watcher: Watcher, snap: Snapshot) -> str:
        html = self._states.get(watcher.state_key)
        if html is None:
            html = self._states[watcher.state_key] = watcher.state(snap)
        return html

    def _events_for(self, w: Watcher, snap: Snapshot, parts: dict[str, _Part]) -> list[Event]:
        events: list[Event] = []
        html = self._state_for(w, snap)
        if html != w.shown_state:
            w.shown_state = html
            events.append({"event": "state", "data": html})
        if self._timeline is not None and self._timeline != w.shown_timeline:
            w.shown_timeline = self._timeline
            events.append({"event": "timeline", "data": self._timeline})
        sent, behind = False, False
        for task, part in sorted(parts.items()):
            event, had_bytes = self._log_event(w, task, part)
            if event is not None:
                events.append(event)
            sent = sent or had_bytes
            behind = behind or w.cursor.get(task, (0, 0))[1] < part.end
        if snap.over and not sent and not behind:
            w.done = True
            events.append({"event": "end", "data": "over"})
        return events

    def _log_event(self, w: Watcher, task: str, part: _Part) -> tuple[Event | None, bool]:
        """The event of the bytes of ``part``'s log ``w`` lacks (caught up first if it
        is behind), and whether it has any."""
        attempt = part.ref.attempt
        had_attempt, mine = w.cursor.get(task, (attempt, 0))
        fresh = had_attempt != attempt
        if fresh:
            mine = 0  # a new attempt: its log from the start
        if mine < part.start:  # behind the shared stream: its own bytes, read once
            self.catchup_reads += 1
            data = read_from(part.ref, mine, min(CHUNK_BYTES, part.start - mine))
            if mine + len(data) == part.start:
                data += part.data  # caught up: from now on in the shared stream
        else:
            data = part.data[mine - part.start:] if mine < part.end else b""
        w.cursor[task] = (attempt, mine + len(data))
        if not data and not fresh:
            return None, False
        return {"event": "log", "id": cursor_text(w.cursor),
                "data": json.dumps({"task": task, "attempt": attempt, "fresh": fresh,
                                    "text": data.decode("utf-8", "replace")})}, bool(data)


class LiveHub:
    """The live runs of one app: a :class:`RunPoller` per run being watched."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._pollers: dict[str, RunPoller] = {}

    def poller(self, run_id: str) -> RunPoller | None:
        with self._lock:
            return self._pollers.get(run_id)

    def join(self, run_id: str, watcher: Watcher, timeline: Render) -> None:
        """Add ``watcher`` to the run's poller (started now if it is the first)."""
        with self._lock:
            poller = self._pollers.get(run_id)
            fresh = poller is None
            if poller is None:
                poller = self._pollers[run_id] = RunPoller(self, run_id, timeline)
            poller.watchers.append(watcher)
        if fresh:
            poller.start()

    def leave(self, run_id: str, watcher: Watcher) -> None:
        with self._lock:
            poller = self._pollers.get(run_id)
            if poller is not None and watcher in poller.watchers:
                poller.watchers.remove(watcher)

    def still_watched(self, poller: RunPoller) -> list[Watcher] | None:
        """The poller's viewers now, or None (and it is gone) when none is left."""
        with self._lock:
            if poller.watchers:
                return list(poller.watchers)
            if self._pollers.get(poller.run_id) is poller:
                del self._pollers[poller.run_id]
            return None


_HUB_LOCK = threading.Lock()


def hub_of(request: Request, services: Services) -> LiveHub:
    """The app's :class:`LiveHub` (``app.state.live_hub``, made on first use)."""
    state = request.app.state
    with _HUB_LOCK:
        hub = getattr(state, "live_hub", None)
        if not isinstance(hub, LiveHub):
            hub = state.live_hub = LiveHub(services)
        return hub


def live_response(request: Request, hub: LiveHub, run_id: str, cursor: Cursor,
                  state: Render, state_key: Hashable, timeline: Render) -> EventSourceResponse:
    """The stream of one viewer of ``run_id`` until the run is over or the viewer leaves."""

    async def stream() -> AsyncIterator[Event]:
        watcher = Watcher(cursor, state, state_key)
        hub.join(run_id, watcher, timeline)
        try:
            while True:
                try:
                    batch = await asyncio.wait_for(watcher.queue.get(), WAIT_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    continue
                for event in batch:
                    yield event
                    if event["event"] == "end":
                        return
        finally:
            hub.leave(run_id, watcher)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})
