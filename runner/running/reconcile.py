"""After a restart: match runs recorded as running with the containers that
still exist (by label), so every run ends in a truthful state.

- an attempt whose container still exists (running or exited) is re-attached:
  the engine collects its logs and exit code as if it had never left;
- an attempt whose container is gone is failed with reason "runner restarted",
  and the task's retry policy decides what happens next;
- a labelled container no running attempt claims is killed and removed.

:func:`plan` decides and reaps; :class:`runner.running.service.RunService` resumes the
runs it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from runner.backends.base import Backend, Existing
from runner.state.records import Status
from runner.state.store import RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePlan:
    run_id: str
    # (task id, attempt) -> the surviving container of a running attempt
    adopt: dict[tuple[str, int], Existing] = field(default_factory=dict)


def plan(store: RunStore, backend: Backend, owner: str) -> list[ResumePlan]:
    """Which runs to resume and which containers to adopt; reaps the rest."""
    existing = {(e.run_id, e.task_id, e.attempt): e for e in backend.existing(owner)}
    plans, claimed = [], set()
    for run in store.runs_with_status(Status.RUNNING):
        adopt = {}
        for attempt in store.attempts(run.id):
            key = (run.id, attempt.task_id, attempt.attempt)
            if attempt.status is Status.RUNNING and key in existing:
                adopt[(attempt.task_id, attempt.attempt)] = existing[key]
                claimed.add(key)
        plans.append(ResumePlan(run.id, adopt))
        log.info("resuming run after restart",
                 extra={"run": run.id, "reattached": len(adopt)})
    for key, orphan in existing.items():
        if key not in claimed:
            _reap(backend, orphan)
    return plans


def _reap(backend: Backend, orphan: Existing) -> None:
    log.info("removing a container no run claims",
             extra={"run": orphan.run_id, "task": orphan.task_id, "handle": orphan.handle})
    backend.kill(orphan.handle)
    backend.remove(orphan.handle)
