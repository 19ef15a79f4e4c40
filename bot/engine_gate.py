"""Runs while the Docker engine is away: queued, with a note saying why.

``flowbot serve`` starts without the engine (webhooks, PR validation, pages
and the scheduler need none). Until the engine answers, runs are accepted and
queued, nothing starts, and every queued run carries :data:`WAITING` as its
note, so its reply comment, commit status and run page say why it waits. When
the engine answers, the notes are cleared and the queue runs in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from runner.model.flows import Flow
from runner.running.service import RunService, Submission
from runner.state.records import Status
from runner.state.store import RunStore

log = logging.getLogger(__name__)

WAITING = (
    "Waiting for the Docker engine: it does not answer, so this run stays queued and "
    "starts when the engine is back (`/cancel {run_id}` drops it)."
)
_PREFIX = WAITING.split(":", 1)[0]


class EngineGate:
    """The run submitter the bot uses: the run service, plus the engine-away notes."""

    def __init__(self, runs: RunService, store: RunStore,
                 notify: Callable[[str], None] = lambda run_id: None) -> None:
        self._runs, self._store, self._notify = runs, store, notify
        self._lock = threading.Lock()
        self._away = False

    @property
    def away(self) -> bool:
        return self._away

    def submit(self, flow: Flow, inputs: Mapping[str, Any], **options: Any) -> Submission:
        submission = self._runs.submit(flow, inputs, **options)
        with self._lock:
            if self._away and submission.status is Status.QUEUED:
                self._note(submission.run_id)
        return submission

    def cancel(self, run_id: str) -> bool:
        return self._runs.cancel(run_id)

    def engine_away(self) -> None:
        """The engine did not answer: note every queued run (also those queued since)."""
        with self._lock:
            if not self._away:
                log.warning("runs wait in the queue until the Docker engine answers")
            self._away = True
            noted = [run.id for run in self._store.runs_with_status(Status.QUEUED)
                     if not run.error]
            for run_id in noted:
                self._note(run_id)
        for run_id in noted:
            self._notify(run_id)  # their comments and statuses say so too

    def engine_back(self) -> None:
        """The engine answers: clear the notes before the queue starts moving."""
        with self._lock:
            if not self._away:
                return  # nothing was noted
            self._away = False
            for run in self._store.runs_with_status(Status.QUEUED):
                if (run.error or "").startswith(_PREFIX):
                    self._store.set_run_status(run.id, Status.QUEUED, expect=[Status.QUEUED],
                                               error="")
        log.info("the Docker engine answers: queued runs start")

    def _note(self, run_id: str) -> None:
        self._store.set_run_status(run_id, Status.QUEUED, expect=[Status.QUEUED],
                                   error=WAITING.format(run_id=run_id))
