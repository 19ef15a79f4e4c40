"""A flow's concurrency limit holds across replicas: ``/run`` sent to all three
at once, ``limit: 1``, and at most one run is running at any moment."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from runner.state.records import RunRecord, Status
from tests.bot.replica_kit import Replicas, replica_db, replicas  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.replicas]

ONE_AT_A_TIME = """id: single
concurrency: {limit: 1, policy: queue}
tasks:
  - id: nap
    image: busybox:latest
    network: none
    commands: ['sleep 2']
"""


def _most_running_at_once(group: Replicas, runs: list[RunRecord]) -> int:
    """Replay the runs' stored status changes in time order (an end before a start
    stamped the same instant)."""
    changes = sorted((t for r in runs for t in group.store.transitions(r.id)
                      if t.task_id is None), key=lambda t: (t.at, t.to_status is Status.RUNNING))
    running, most = 0, 0
    for change in changes:
        running += (change.to_status is Status.RUNNING) - (change.from_status is Status.RUNNING)
        most = max(most, running)
    return most


def test_limit_one_with_run_sent_to_every_replica_at_once(
    replicas: Callable[..., Replicas]  # noqa: F811
) -> None:
    group = replicas()
    group.sync({"flows/single.yml": ONE_AT_A_TIME})
    events = [group.comment_event("/run single") for _ in range(len(group))]
    sends = [partial(group[i].deliver, "issue_comment", payload)
             for i, (_, payload) in enumerate(events)]
    assert group.at_once(sends) == [202] * len(group)

    runs = group.runs_ended("single", len(group))
    assert [r.status for r in runs] == [Status.SUCCESS] * len(group), group.log_tail()  # queued
    assert _most_running_at_once(group, runs) == 1
    spans = sorted((r.started_at, r.finished_at) for r in runs)
    for (_, ended), (started, _) in zip(spans, spans[1:], strict=False):
        assert ended is not None and started is not None and ended <= started
