"""Edits of a run's comment, paced: never the same body twice in a row, and while
the run is running at most one edit per comment every ``interval`` seconds
(``FLOWBOT_REPLY_EDIT_SECONDS``).

A body offered too soon waits as the comment's *pending* body (a newer one
replaces it); one flusher thread, started only while something is pending and
gone when nothing is, sends each when its time comes. A final body (the run has
ended) goes out at once and drops what was pending, so the last word is always
the run's end. Sends of one run are serialized by the caller's per-run lock
(``hold``): offers come under it, the flusher takes it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from runner.clock import Clock

log = logging.getLogger(__name__)

Key = tuple[int, str]  # (comment id, run id)
Send = Callable[[str], None]
REMEMBERED = 4096  # comments whose last body is kept, most recent first


@dataclass(frozen=True)
class _Pending:
    body: str
    due: datetime
    send: Send


class EditPacer:
    def __init__(self, clock: Clock, interval: float,
                 hold: Callable[[str], AbstractContextManager[None]],
                 poll: float = 1.0) -> None:
        self._clock, self._interval, self._hold, self._poll = (
            clock, timedelta(seconds=max(interval, 0.0)), hold, poll)
        self._guard = threading.Condition()
        self._last: OrderedDict[Key, tuple[str, datetime]] = OrderedDict()
        self._pending: dict[Key, _Pending] = {}
        self._flusher: threading.Thread | None = None

    def offer(self, key: Key, body: str, send: Send, *, final: bool) -> bool:
        """Send ``body`` to the comment now, later, or never (it is already there);
        whether it was sent now. Call with the run's lock held."""
        now = self._clock.now()
        with self._guard:
            last = self._last.get(key)
            if final or (last is not None and last[0] == body):
                self._pending.pop(key, None)  # older than this body
            if last is not None and last[0] == body:
                return False  # the comment shows this already
            if not final and last is not None and last[1] + self._interval > now:
                self._pending[key] = _Pending(body, last[1] + self._interval, send)
                self._start_flusher()
                return False  # too soon: the flusher sends it when its time comes
            self._pending.pop(key, None)
        send(body)
        self._remember(key, body, now)
        return True

    def pending(self) -> int:
        with self._guard:
            return len(self._pending)

    def wake(self) -> None:
        """Have the flusher look at the clock again (tests move a fake clock)."""
        with self._guard:
            self._guard.notify_all()

    def flush(self) -> int:
        """Send every pending body whose time has come; how many were sent."""
        now = self._clock.now()
        with self._guard:
            due = [key for key, item in self._pending.items() if item.due <= now]
        sent = 0
        for key in due:
            with self._hold(key[1]):
                with self._guard:
                    item = self._pending.get(key)
                    if item is None or item.due > now:
                        continue  # sent or replaced meanwhile
                    del self._pending[key]
                try:
                    item.send(item.body)
                except Exception:  # GitHub trouble: the next body or the final one follows
                    log.exception("could not edit a run's comment",
                                  extra={"comment": key[0], "run": key[1]})
                    continue
                self._remember(key, item.body, now)
                sent += 1
        return sent

    def _remember(self, key: Key, body: str, at: datetime) -> None:
        with self._guard:
            self._last[key] = (body, at)
            self._last.move_to_end(key)
            while len(self._last) > REMEMBERED:
                self._last.popitem(last=False)  # long over: forget the oldest

    def _start_flusher(self) -> None:
        """Start the flusher unless it runs (call with the guard held)."""
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                             name="flowbot-edit-pacer")
            self._flusher.start()
        self._guard.notify_all()

    def _flush_loop(self) -> None:
        while True:
            with self._guard:
                if not self._pending:
                    self._flusher = None
                    return  # nothing waits: started again by the next deferred body
                earliest = min(item.due for item in self._pending.values())
                wait = (earliest - self._clock.now()).total_seconds()
                if wait > 0:
                    self._guard.wait(min(wait, self._poll))
                    continue  # look at the clock again
            self.flush()
