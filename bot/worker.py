"""Background workers: drain recorded deliveries through the router.

Each worker thread claims one pending delivery at a time from the database,
dispatches it, and marks it done or failed with the error text. A wake-up
event makes a new delivery start within milliseconds; a short poll catches
deliveries recorded by another replica or left over from before a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.deliveries import Delivery, DeliveryStore
from bot.router import Event

log = logging.getLogger(__name__)

Dispatch = Callable[[Event], object]
POLL_SECONDS = 1.0
CLAIM_BATCH = 8  # small: a slow handler holds back at most the few claimed after it


def process_one(store: DeliveryStore, dispatch: Dispatch) -> bool:
    """Claim and process one pending delivery; False if none was pending."""
    return process_batch(store, dispatch, 1) > 0


def process_batch(store: DeliveryStore, dispatch: Dispatch, limit: int = CLAIM_BATCH) -> int:
    """Claim up to ``limit`` pending deliveries (one write) and process them in order,
    each marked done or failed as soon as it is; returns how many."""
    claimed = store.claim(limit)
    for delivery in claimed:
        _process(store, dispatch, delivery)
    return len(claimed)


def _process(store: DeliveryStore, dispatch: Dispatch, delivery: Delivery) -> None:
    event = Event(delivery.event, delivery.payload, delivery.id)
    context = {"delivery": delivery.id, "event": delivery.event, "repo": event.repo}
    try:
        dispatch(event)
    except Exception as exc:  # a handler's failure must not stop the worker
        log.exception("delivery failed", extra=context)
        store.finish(delivery.id, f"{type(exc).__name__}: {exc}")
        return
    store.finish(delivery.id)
    log.debug("delivery done", extra=context)


def drain(store: DeliveryStore, dispatch: Dispatch, limit: int = 10_000) -> int:
    """Process pending deliveries until none is left (tests, the demo); returns the count."""
    count = 0
    while count < limit and process_one(store, dispatch):
        count += 1
    return count


class Workers:
    """``count`` threads processing deliveries until :meth:`stop`."""

    def __init__(self, store: DeliveryStore, dispatch: Dispatch, count: int = 2) -> None:
        self._store = store
        self._dispatch = dispatch
        self._count = max(1, count)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def notify(self) -> None:
        """A delivery was recorded: wake a worker now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._store.requeue_unfinished()  # work a crash interrupted is done again
        self._stop.clear()
        for number in range(self._count):
            thread = threading.Thread(
                target=self._loop, name=f"flowbot-delivery-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = process_batch(self._store, self._dispatch) > 0
            except Exception:  # the database hiccuped; try again after a pause
                log.exception("delivery worker could not claim work")
                worked = False
            if worked:
                continue
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
