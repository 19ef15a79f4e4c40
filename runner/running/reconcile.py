"""Adopting runs: match runs recorded as running by a replica that is gone (a
crash, a SIGKILL, a clean stop) with the containers that still exist (by label),
so every run ends in a truthful state.

- only runs the caller names adoptable are touched (those of dead replicas, and
  legacy runs without an owner); each is re-stamped as the adopter's with a
  conditional update, so of two replicas adopting at once only one takes a run;
- an attempt whose container still exists (running or exited) is re-attached:
  the engine collects its logs and exit code as if it had never left;
- an attempt whose container is gone is failed with reason "runner restarted",
  and the task's retry policy decides what happens next;
- a labelled container is killed and removed only if no running attempt claims it
  and its run is ended, unknown, or one of the adopted runs: a container of a run
  that a live replica executes is never touched.

:func:`plan` decides and reaps; :class:`runner.running.service.RunService` resumes the
runs it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.backends.base import Backend, Existing
from runner.state.records import RunRecord, Status
from runner.state.store import RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePlan:
    run_id: str
    # (task id, attempt) -> the surviving container of a running attempt
    adopt: dict[tuple[str, int], Existing] = field(default_factory=dict)


def plan(store: RunStore, backend: Backend, owner: str, replica: str,
         adoptable: Callable[[RunRecord], bool]) -> list[ResumePlan]:
    """Which running runs ``replica`` takes over and which containers (labelled
    ``owner``) to re-attach; reaps the containers nobody can claim."""
    existing = {(e.run_id, e.task_id, e.attempt): e for e in backend.existing(owner)}
    plans, claimed, adopted = [], set(), set()
    for run in store.runs_with_status(Status.RUNNING):
        if not adoptable(run) or not store.take_over(run.id, run.owner, replica):
            continue  # a live replica's run, or another adopter took it first
        adopted.add(run.id)
        adopt = {}
        for attempt in store.attempts(run.id):
            key = (run.id, attempt.task_id, attempt.attempt)
            if attempt.status is Status.RUNNING and key in existing:
                adopt[(attempt.task_id, attempt.attempt)] = existing[key]
                claimed.add(key)
        plans.append(ResumePlan(run.id, adopt))
        log.info("adopting a run", extra={"run": run.id, "from_replica": run.owner,
                                          "reattached": len(adopt)})
    for key, orphan in existing.items():
        if key not in claimed and _nobodys(store, orphan.run_id, adopted):
            _reap(backend, orphan)
    return plans


def _nobodys(store: RunStore, run_id: str, adopted: set[str]) -> bool:
    """Whether no live replica may still be collecting a container of ``run_id``."""
    if run_id in adopted:
        return True  # ours now, and no running attempt claims the container
    run = store.get_run(run_id)
    return run is None or run.status.terminal


def _reap(backend: Backend, orphan: Existing) -> None:
    log.info("removing a container no run claims",
             extra={"run": orphan.run_id, "task": orphan.task_id, "handle": orphan.handle})
    backend.kill(orphan.handle)
    backend.remove(orphan.handle)
