"""Background workers: drain recorded deliveries through the router.

Each worker thread claims a few pending deliveries at a time from the database,
dispatches them in order, and marks them done or failed with the error text. A
wake-up event makes a new delivery start within milliseconds, also one another
replica recorded (its notification calls :meth:`Workers.wake`); a short poll is
the fallback for a lost notification and for deliveries due for a retry.

Intake comes first: answering GitHub quickly is what must not slip, and the
workers share the process (and its interpreter lock) with the web server. So
while deliveries keep arriving a worker pauses briefly between batches instead
of competing for every cycle; it still makes progress under any load and runs
flat out once the burst is over. Outcomes of quick deliveries are written
together, one write per batch instead of one per delivery.

A delivery whose handler failed for a passing reason (GitHub or the git remote
did not answer, the database was busy: :func:`bot.intake.retry.is_transient`) goes back
to the queue with exponential backoff (:class:`bot.intake.retry.RetryPolicy`) and keeps
its place; any other failure, or one past the retry budget, is final.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.intake.deliveries import Delivery, DeliveryStore, Outcome
from bot.intake.retry import RetryPolicy, is_transient
from bot.intake.router import Event

log = logging.getLogger(__name__)

Dispatch = Callable[[Event], object]
Monotonic = Callable[[], float]
Observe = Callable[[str, str], None]  # (event, outcome: done / retried / failed), for /metrics
POLL_SECONDS = 1.0
CLAIM_BATCH = 8  # small: a slow handler holds back at most the few claimed after it
FLUSH_SECONDS = 0.05  # an outcome waits at most this long for the batch's shared write
BUSY_SECONDS = 0.05  # a delivery recorded this recently means intake is busy
BUSY_PAUSE = 0.1  # while it is, a worker rests this long between batches
RECHECK_SECONDS = 2.0  # a delivery claimed longer ago than this is checked before it starts


def process_one(store: DeliveryStore, dispatch: Dispatch,
                retry: RetryPolicy | None = None) -> bool:
    """Claim and process one due delivery; False if none was due."""
    return process_batch(store, dispatch, 1, retry=retry) > 0


def process_batch(store: DeliveryStore, dispatch: Dispatch, limit: int = CLAIM_BATCH,
                  monotonic: Monotonic = time.monotonic,
                  retry: RetryPolicy | None = None, observe: Observe | None = None) -> int:
    """Claim up to ``limit`` pending deliveries (one write) and process them in order;
    returns how many. Outcomes are written together at the end of the batch, or
    before the next delivery starts once :data:`FLUSH_SECONDS` have passed since
    the first unwritten one started: a slow handler's outcome is written before
    the next delivery runs, and a crash repeats at most a moment's quick work.
    ``observe`` hears each delivery's event and outcome.

    A delivery whose batch was claimed more than :data:`RECHECK_SECONDS` ago is
    started only if it is still this worker's: a replica that stalled past its
    lease may have been adopted meanwhile, its claims requeued and handled
    elsewhere. Outcomes are fenced the same way (``DeliveryStore.finish_many``)."""
    claimed = store.claim(limit)
    claimed_at = monotonic()
    outcomes: list[Outcome] = []
    since = 0.0
    for delivery in claimed:
        if monotonic() - claimed_at >= RECHECK_SECONDS and not store.still_claimed(delivery.id):
            log.warning("delivery left to the replica that took it over", extra={
                "delivery": delivery.id, "event": delivery.event})
            continue
        if outcomes and monotonic() - since >= FLUSH_SECONDS:
            store.finish_many(outcomes)
            outcomes = []
        if not outcomes:
            since = monotonic()
        failure = _process(dispatch, delivery)
        retried = failure is not None and _retried(store, delivery, failure,
                                                   retry or RetryPolicy())
        if not retried:
            outcomes.append((delivery.id, None if failure is None else failure.text))
        if observe is not None:
            outcome = "done" if failure is None else "retried" if retried else "failed"
            observe(delivery.event, outcome)
    store.finish_many(outcomes)
    return len(claimed)


class _Failure:
    """A handler's failure: its text, and whether it may pass if tried again."""

    def __init__(self, exc: Exception) -> None:
        self.text = f"{type(exc).__name__}: {exc}"
        self.transient = is_transient(exc)


def _process(dispatch: Dispatch, delivery: Delivery) -> _Failure | None:
    """Dispatch one delivery; its failure if its handler raised."""
    event = Event(delivery.event, delivery.payload, delivery.id)
    context = {"delivery": delivery.id, "event": delivery.event, "repo": event.repo,
               "attempt": delivery.attempts}
    try:
        dispatch(event)
    except Exception as exc:  # a handler's failure must not stop the worker
        log.exception("delivery failed", extra=context)
        return _Failure(exc)
    log.debug("delivery done", extra=context)
    return None


def _retried(store: DeliveryStore, delivery: Delivery, failure: _Failure,
             retry: RetryPolicy) -> bool:
    """Queue a transient failure again after its backoff; False if it is final."""
    delay = retry.delay(delivery.attempts) if failure.transient else None
    if delay is None:
        return False  # not transient, or its retry budget is spent
    due = store.retry_later(delivery.id, failure.text, delay)
    log.warning("delivery will be retried", extra={
        "delivery": delivery.id, "attempt": delivery.attempts, "retry_at": due.isoformat()})
    return True


def drain(store: DeliveryStore, dispatch: Dispatch, limit: int = 10_000,
          retry: RetryPolicy | None = None) -> int:
    """Process due deliveries until none is left (tests, the demo); returns the count."""
    count = 0
    while count < limit and process_one(store, dispatch, retry):
        count += 1
    return count


class Workers:
    """``count`` threads processing deliveries until :meth:`stop`."""

    def __init__(self, store: DeliveryStore, dispatch: Dispatch, count: int = 2,
                 monotonic: Monotonic = time.monotonic,
                 retry: RetryPolicy | None = None, observe: Observe | None = None,
                 poll: float = POLL_SECONDS) -> None:
        self._store = store
        self._poll = poll
        self._observe = observe
        self._dispatch = dispatch
        self._retry = retry or RetryPolicy()
        self._count = max(1, count)
        self._monotonic = monotonic
        self._last_delivery = float("-inf")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def notify(self) -> None:
        """A delivery was recorded: wake a worker now rather than at the next poll."""
        self._last_delivery = self._monotonic()
        self._wake.set()

    def wake(self) -> None:
        """Work is waiting that this process did not take in (another replica's
        delivery): wake a worker without counting it as intake here."""
        self._wake.set()

    def intake_busy(self) -> bool:
        """True while deliveries are arriving (one was recorded moments ago)."""
        return self._monotonic() - self._last_delivery < BUSY_SECONDS

    def start(self) -> None:
        # work a crash interrupted is requeued by the replica that adopts the
        # crashed one (bot.runtime), never here: other replicas' claims are live
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
                worked = process_batch(self._store, self._dispatch,
                                       monotonic=self._monotonic, retry=self._retry,
                                       observe=self._observe) > 0
            except Exception:  # the database hiccuped; try again after a pause
                log.exception("delivery worker could not claim work")
                worked = False
            if worked:
                if self.intake_busy():
                    self._stop.wait(BUSY_PAUSE)  # let the web server answer first
                continue
            self._wake.wait(self._poll)
            self._wake.clear()
