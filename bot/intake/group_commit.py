"""Group commit for webhook intake.

Each request awaits its delivery's durable record, but records are written by
one thread that takes every delivery waiting at that moment and inserts them in
one transaction. Under load that turns N commits into one without delaying a
lone delivery, and the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

from bot.intake.deliveries import DeliveryStore, NewDelivery

log = logging.getLogger(__name__)

MAX_BATCH = 256
_Waiter = tuple[NewDelivery, asyncio.AbstractEventLoop, "asyncio.Future[bool]"]
_Result = tuple["asyncio.Future[bool]", bool | BaseException]


def _resolve(future: asyncio.Future[bool], result: bool | BaseException) -> None:
    if future.done():
        return  # the request went away (client disconnected)
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _resolve_all(resolved: list[_Result]) -> None:
    for future, result in resolved:
        _resolve(future, result)


class Intake:
    """Records deliveries for async callers, batching concurrent ones."""

    def __init__(self, store: DeliveryStore, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Waiter] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def record(self, delivery_id: str, event: str, body: bytes,
                     payload: dict[str, Any]) -> bool:
        """Durably queue one delivery; False for a duplicate (its id was recorded
        before and did not fail: a redelivery of a failed one is queued again)."""
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put(((delivery_id, event, body, payload), loop, future))
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return  # started already: no lock on the hot path
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flowbot-intake",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Waiter]) -> None:
        results: list[bool | BaseException]
        try:
            results = list(self._store.record_many([item for item, _, _ in batch]))
        except Exception as exc:  # the database is down: every waiter gets the error
            log.exception("could not record deliveries", extra={"count": len(batch)})
            results = [exc] * len(batch)
        # one wake-up per event loop rather than one per request
        by_loop: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
        for (_, loop, future), result in zip(batch, results, strict=True):
            by_loop.setdefault(loop, []).append((future, result))
        for loop, resolved in by_loop.items():
            loop.call_soon_threadsafe(_resolve_all, resolved)
