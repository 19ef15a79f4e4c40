"""A run whose flow declares a secret flowbot has no value for: a manual or CLI
run is refused before anything is recorded (no run id is used up); a scheduled
slot still records a failed run, whose failure issue is how the team hears of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from enginekit import Kit, task

from runner.errors import SecretMissing
from runner.model.flows import flow_from_data
from runner.running.service import Submission
from runner.state.records import Status, Trigger, TriggerType

pytestmark = pytest.mark.docker

FLOW = {"id": "alerting", "secrets": ["WEBHOOK_URL", "API_KEY"], "tasks": [task("t", "true")]}


def _submit(kit: Kit, trigger: Trigger) -> Submission:
    flow = flow_from_data(FLOW, path="flows/alerting.yml")
    return kit.service.submit(flow, {}, repo="o/r", commit=None, source=kit.source,
                              trigger=trigger)


@pytest.mark.parametrize("kind", [TriggerType.MANUAL, TriggerType.CLI])
def test_a_run_missing_secrets_is_refused_before_it_is_recorded(
    kit: Kit, kind: TriggerType
) -> None:
    with pytest.raises(SecretMissing) as refused:
        _submit(kit, Trigger(kind, "octocat"))

    assert refused.value.names == ["API_KEY", "WEBHOOK_URL"]
    assert "FLOWBOT_SECRET_<NAME>" in str(refused.value)
    assert kit.store.list_runs() == [] and kit.events == []


def test_a_scheduled_slot_missing_secrets_records_a_failed_run(kit: Kit) -> None:
    slot = datetime(2026, 3, 2, 10, tzinfo=UTC)
    submission = _submit(kit, Trigger(TriggerType.SCHEDULE, "nightly", scheduled_at=slot))

    [run] = kit.store.list_runs()
    assert (run.id, run.status) == (submission.run_id, Status.FAILED)
    assert run.error is not None and "API_KEY, WEBHOOK_URL" in run.error
