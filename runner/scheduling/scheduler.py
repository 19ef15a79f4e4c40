"""The scheduler: decides which slots are due and hands each to a sink, once.

A loop over a :class:`runner.scheduling.schedule_store.ScheduleStore`: each tick the store
hands over the schedules due now (an index range scan, so a tick costs O(due),
never O(all)), the scheduler decides their slots by the trigger's catch-up
policy (:func:`runner.scheduling.catchup.decide`), and the store records the decision and
claims the slots under a unique key per slot, so each is claimed by one
instance once. Only after that commit is the sink called. A crash between the
two leaves the slot in state ``fired``; :meth:`Scheduler.recover` starts those
exactly once. Every slot not run is recorded as skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from runner.clock import Clock, real_seconds
from runner.errors import FireDeclined, FlowbotError
from runner.scheduling.catchup import ON_TIME_GRACE, Decision, decide
from runner.scheduling.fires import Fire, FireState, SkipReason
from runner.scheduling.schedule_store import Schedule, ScheduleStore

__all__ = ["BATCH", "LEASE", "MAX_SLEEP", "Fire", "FireSink", "Scheduler"]  # Fire: re-exported

log = logging.getLogger(__name__)

BATCH = 500  # schedules claimed per transaction
MAX_SLEEP = 60.0  # seconds; bounds the effect of a wall-clock change or a missed wake-up
LEASE = timedelta(minutes=5)  # a fire left "fired" this long by another instance is orphaned


class FireSink(Protocol):
    """Where fired slots go (in production, an adapter over ``RunService.submit``)."""

    def fire(self, fire: Fire) -> str | None:
        """Start the run for ``fire``; return its run id, or None if the flow's
        concurrency policy declined it (recorded as skipped). To record why (and
        the skipped run's id), raise :class:`FireDeclined` instead of returning None.

        Must be idempotent on ``fire.key``: after a crash between the run starting
        and the scheduler recording it, :meth:`Scheduler.recover` calls again with
        the same fire, and the sink must return the existing run rather than start
        a second. Raise a :class:`FlowbotError` for a permanent refusal (recorded as
        failed); any other exception leaves the fire to be retried by ``recover``.
        """


class Scheduler:
    """Fires due schedule slots exactly once into ``sink``.

    Several instances may share one PostgreSQL database, each with its own
    ``store`` (its ``instance_id`` unique among live instances: in ``flowbot
    serve`` the replica id, new each start). Fires a dead replica recorded but
    did not start are started by the replica that adopts it (:meth:`adopt`);
    the claim lease (:data:`LEASE`, :meth:`recover`) stays as the fallback for
    fires whose sink failed and for instances that never had a replica id.
    ``wake`` is the event the store sets on pause and resume; setting it makes
    :meth:`run_forever` re-read its next wake-up.
    ``lateness``, if given, is told how many seconds after its slot each fire is
    handed to the sink (the bot's metrics; the scheduler knows nothing of them).
    ``live``, if given, names the live instances (replicas) whose fires the lease
    fallback leaves alone: under a fast rehearsal clock a live replica's fire
    can look older than the lease while its sink is still starting it.
    """

    def __init__(
        self,
        store: ScheduleStore,
        sink: FireSink,
        clock: Clock,
        *,
        wake: threading.Event | None = None,
        misfire_grace: float = ON_TIME_GRACE.total_seconds(),
        lateness: Callable[[float], None] | None = None,
        live: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._store = store
        self._sink = sink
        self._clock = clock
        self._instance_id = store.instance_id
        self._wake = wake if wake is not None else threading.Event()
        self._grace = timedelta(seconds=misfire_grace)
        self._lateness = lateness
        self._live = live

    def wake(self) -> None:
        """Make :meth:`run_forever` re-read the earliest next fire now."""
        self._wake.set()

    def tick(self, now: datetime) -> list[Fire]:
        """Claim every slot due at ``now`` (up to :data:`BATCH` schedules) and start them.

        Returns the fires recorded by this call, in their final state.
        """
        claimed = self._store.claim(now, lambda due: self._decide(due, now), BATCH)
        return self._start(claimed)

    def recover(self, now: datetime | None = None, *, own: bool = True) -> list[Fire]:
        """Start fires left in state ``fired`` by a crash: this instance's earlier
        life (``own``) or any instance, not live, whose claim is older than
        :data:`LEASE`. Each starts once."""
        now = now or self._clock.now()
        spare = set(self._live()) - {self._instance_id} if self._live is not None else set()
        taken = self._store.reclaim(now, LEASE, own=own, spare=spare)
        if taken:
            log.warning("recovering %d fires recorded but not started", len(taken),
                        extra={"instance": self._instance_id})
        return self._start(taken)

    def adopt(self, dead: Sequence[str], now: datetime | None = None) -> list[Fire]:
        """Start the fires the ``dead`` replicas recorded but did not start (each
        once: the store hands each fire to one adopter, and the sink is idempotent
        on the fire's key). Returns them in their final state."""
        taken = self._store.adopt(dead, now or self._clock.now())
        if taken:
            log.warning("adopting %d fires of dead replicas", len(taken),
                        extra={"instance": self._instance_id, "dead": list(dead)})
        return self._start(taken)

    def next_wakeup(self) -> datetime | None:
        """The earliest next fire of all schedules."""
        return self._store.next_wakeup()
    def run_forever(self, stop: threading.Event) -> None:
        """Tick whenever a slot is due until ``stop`` is set."""
        self.recover()
        last_recovery = self._clock.now()
        while not stop.is_set():
            now = self._clock.now()
            try:
                self.tick(now)
                if now - last_recovery >= LEASE:
                    self.recover(now, own=False)
                    last_recovery = now
                earliest = self.next_wakeup()
            except Exception:  # a database hiccup must not kill the loop
                log.exception("scheduler tick failed", extra={"instance": self._instance_id})
                earliest = None
            self._sleep(earliest, stop)

    def _sleep(self, earliest: datetime | None, stop: threading.Event) -> None:
        delay = MAX_SLEEP
        if earliest is not None:
            ahead = real_seconds(self._clock, (earliest - self._clock.now()).total_seconds())
            delay = min(MAX_SLEEP, max(0.0, ahead))
        waited = 0.0
        while waited < delay and not stop.is_set():
            step = min(0.5, delay - waited)  # short steps so stop is noticed promptly
            if self._wake.wait(step):
                break
            waited += step
        self._wake.clear()

    def _decide(self, due: Schedule, now: datetime) -> Decision:
        assert due.next_fire_at is not None  # only due schedules are handed over
        return decide(due.cron, due.timezone, due.next_fire_at, now,
                      due.catchup, due.catchup_limit, self._grace)

    def _start(self, fires: list[Fire]) -> list[Fire]:
        done = [self._start_one(f) if f.state is FireState.FIRED else f for f in fires]
        self._store.record_outcomes(
            [f for f, before in zip(done, fires, strict=True) if f is not before])
        return done

    def _start_one(self, fire: Fire) -> Fire:
        extra = {"repo": fire.repo, "flow": fire.flow_id, "fire": fire.key}
        if self._lateness is not None:
            self._lateness((self._clock.now() - fire.slot_at).total_seconds())
        try:
            run_id = self._sink.fire(fire)
        except FireDeclined as exc:
            log.info("fire declined: %s", exc.reason, extra=extra)
            return replace(fire, state=FireState.SKIPPED, reason=exc.reason, run_id=exc.run_id)
        except FlowbotError as exc:
            log.warning("fire refused: %s", exc, extra=extra)
            return replace(fire, state=FireState.FAILED, reason=str(exc))
        except Exception:
            log.exception("sink failed; the fire will be retried by recovery", extra=extra)
            return fire
        if run_id is None:
            log.info("fire declined by the runner", extra=extra)
            return replace(fire, state=FireState.SKIPPED, reason=SkipReason.DECLINED.value)
        log.info("fire started run %s", run_id, extra={**extra, "run": run_id})
        return replace(fire, state=FireState.STARTED, run_id=run_id)

