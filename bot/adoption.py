"""The replica's heartbeat and the adoption of dead replicas' work.

Every ``flowbot serve`` process is one replica (:mod:`runner.state.replicas`).
Its "replica" thread (:meth:`Adoption.run_forever`) beats every heartbeat and
takes the dead replicas it won; for each it adopts what that replica left:

- deliveries it had claimed go back to the queue (any replica's workers take them),
- fires it recorded but never started are started, once,
- runs it was executing are reconciled against the backend by the run service
  (kept pending while the engine does not answer, and tried again).

:meth:`Adoption.first_pass` does the same once at start-up, before the workers
and the scheduler start: a restarted process's previous id is just another
dead replica.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.intake.deliveries import DeliveryStore
from runner.errors import BackendError
from runner.scheduling.scheduler import Scheduler
from runner.state.replicas import ReplicaRegistry

log = logging.getLogger(__name__)


class RunAdopter(Protocol):
    """The part of the run service adoption needs."""

    def adopt(self, dead_replicas: Sequence[str]) -> list[str]:
        """Reconcile the runs the ``dead_replicas`` (and legacy runs of no
        replica) left running; the ids of the runs reconciled. Raises
        :class:`BackendError` while the backend does not answer."""


class ReplicaObserver(Protocol):
    """What the heartbeat tells an observer (:class:`bot.web.metrics.Metrics`)."""

    def replicas_live(self, count: int) -> None:
        """After each renewal: how many replicas hold a lease (this one included)."""

    def replicas_adopted(self, count: int) -> None:
        """``count`` dead replicas were adopted by this one."""

    def heartbeat_failed(self) -> None:
        """A renewal failed (a database error), or found the lease adopted by another."""


class Adoption:
    """One replica's heartbeat and its adoption of dead replicas."""

    def __init__(self, replicas: ReplicaRegistry, deliveries: DeliveryStore,
                 scheduler: Scheduler, runs: RunAdopter,
                 work_queued: Callable[[], None] = lambda: None, *,
                 observe: ReplicaObserver | None = None) -> None:
        self.replicas = replicas
        self._observe = observe
        self._deliveries = deliveries
        self._scheduler = scheduler
        self._runs = runs
        self._work_queued = work_queued
        self._pending_runs: set[str] = set()  # dead replicas whose runs wait for the engine
        self._lock = threading.Lock()

    def first_pass(self) -> None:
        """At start-up: register, then adopt every dead replica's deliveries and
        fires (and, alone, deliveries claimed before replicas had ids). Runs are
        adopted by :meth:`adopt_runs` once the backend answers."""
        self.replicas.register()
        self._count_live()
        self._adopt(self.replicas.take_dead(), unclaimed=self.replicas.alone())

    def beat(self) -> list[str]:
        """Renew the lease and adopt the replicas that died since; returns their ids."""
        try:
            renewed = self.replicas.beat()
        except Exception:
            if self._observe is not None:
                self._observe.heartbeat_failed()
            raise
        if not renewed and self._observe is not None:
            self._observe.heartbeat_failed()  # adopted by another: registered again
        self._count_live()
        dead = self.replicas.take_dead()
        self._adopt(dead)
        return dead

    def _count_live(self) -> None:
        if self._observe is not None:
            self._observe.replicas_live(len(self.replicas.live()))

    def _adopt(self, dead: Sequence[str], *, unclaimed: bool = False) -> None:
        if dead and self._observe is not None:
            self._observe.replicas_adopted(len(dead))
        if dead or unclaimed:
            if self._deliveries.requeue_claimed_by(dead, unclaimed=unclaimed):
                self._work_queued()  # wake the delivery workers
        if dead:
            self._scheduler.adopt(dead)
            with self._lock:
                self._pending_runs.update(dead)

    def adopt_runs(self) -> list[str]:
        """Reconcile the runs of the dead replicas won so far (and legacy runs of no
        replica); the run ids reconciled. Raises :class:`BackendError` while the
        backend does not answer: the replicas stay pending for the next call."""
        with self._lock:
            dead = sorted(self._pending_runs)
        resumed = self._runs.adopt(dead)
        with self._lock:
            self._pending_runs.difference_update(dead)
        return resumed

    def run_forever(self, stop: threading.Event, engine_ready: Callable[[], bool]) -> None:
        """Beat and adopt every heartbeat until ``stop``; runs only while
        ``engine_ready`` (else the engine gate adopts them when the engine answers)."""
        while not stop.wait(self.replicas.heartbeat_seconds):
            try:
                self.beat()
                if self._pending_runs and engine_ready() and not stop.is_set():
                    self.adopt_runs()
            except BackendError as exc:
                log.warning("runs of dead replicas wait for the backend",
                            extra={"reason": str(exc)})
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("replica heartbeat failed",
                              extra={"replica": self.replicas.id})

    def stop(self) -> None:
        """Mark this replica stopped: another adopts what it leaves at once."""
        self.replicas.stop()
