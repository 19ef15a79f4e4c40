"""The scheduler's sink in the service: a fired slot becomes a run of the flow
as registered from the default branch, at the commit it was registered from.

Idempotent on the slot: a fire recovered after a crash finds the run it
already started (same flow, trigger and slot) instead of starting a second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from runner.errors import FireDeclined, FlowNotFound
from runner.running.service import RunService
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Fire
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore

log = logging.getLogger(__name__)

MirrorFor = Callable[[str, str], Path]  # (repo, sha) -> a git repository holding sha


class RunSink:
    """A :class:`runner.scheduling.scheduler.FireSink` over :class:`RunService`."""

    def __init__(self, registry: Registry, store: RunStore, runs: RunService,
                 mirror_for: MirrorFor) -> None:
        self._registry, self._store, self._runs = registry, store, runs
        self._mirror_for = mirror_for

    def _existing(self, fire: Fire) -> str | None:
        for run in self._store.list_runs(repo=fire.repo, flow_id=fire.flow_id, limit=200):
            trig = run.trigger
            if (trig.type is TriggerType.SCHEDULE and trig.actor == fire.trigger_id
                    and trig.scheduled_at == fire.slot_at):
                return run.id
        return None

    def fire(self, fire: Fire) -> str | None:
        existing = self._existing(fire)
        if existing is not None:
            return existing  # started before a crash: the same run, not a second
        registered = self._registry.get(fire.repo, fire.flow_id)
        if registered is None:
            raise FlowNotFound(fire.flow_id)
        source = self._mirror_for(fire.repo, registered.commit)
        submission = self._runs.submit(
            registered.flow, fire.inputs, repo=fire.repo, commit=registered.commit,
            source=source,
            trigger=Trigger(TriggerType.SCHEDULE, fire.trigger_id, scheduled_at=fire.slot_at),
        )
        log.info("scheduled run submitted", extra={"run": submission.run_id, "fire": fire.key})
        if submission.status is Status.SKIPPED:
            raise FireDeclined(submission.reason or "skipped", submission.run_id)
        return submission.run_id
