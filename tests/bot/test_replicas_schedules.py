"""A simulated day of schedules on three replicas, one SIGKILLed and started again
at midday: every slot fires exactly once (no gap, no duplicate).

The replicas share a rehearsal clock (``FLOWBOT_CLOCK``): a day passes in a
minute of real time, so slots come every second and a SIGKILL lands among them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from runner.clock import clock_from_setting
from runner.scheduling.fires import FireState, schedule_fires
from runner.state.records import RunRecord
from tests.bot.replica_kit import Replicas, replica_db, replicas  # noqa: F401  (fixtures)
from tests.bot.serve_kit import WAIT_SECONDS
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.replicas]

RATE = 1440  # a simulated day in a minute
START = "2026-03-06T18:00:00+00:00"  # hours before the day, to start the replicas in
FLOW = """id: {id}
notify: {{status: false, issue_on_failure: false}}
triggers:
  - type: schedule
    cron: "{cron}"
    timezone: Asia/Tokyo
    catchup: all
    catchup_limit: 1000
tasks:
  - id: t
    image: busybox:latest
    network: none
    commands: ['true']
"""
EVERY = {"hourly": ("0 * * * *", timedelta(hours=1)),
         "halfhourly": ("*/30 * * * *", timedelta(minutes=30))}  # Tokyo: no DST


def _fires(group: Replicas, flow_id: str) -> list[tuple[datetime, str, str | None]]:
    t = schedule_fires.c
    with group.engine.connect() as conn:
        rows = conn.execute(select(t.slot_at, t.state, t.run_id).where(t.flow_id == flow_id))
        return [(slot, state, run_id) for slot, state, run_id in rows]


def _slots(start: datetime, every: timedelta) -> list[datetime]:
    return [start + every * k for k in range(int(timedelta(days=1) / every))]


def test_a_day_of_schedules_fires_every_slot_once_across_a_sigkill(
    replicas: Callable[..., Replicas]  # noqa: F811
) -> None:
    setting = f"{START}@{time.time():.3f}x{RATE}"
    clock = clock_from_setting(setting)
    group = replicas(extra={"FLOWBOT_CLOCK": setting})
    group.sync({f"flows/{flow_id}.yml": FLOW.format(id=flow_id, cron=cron)
                for flow_id, (cron, _) in EVERY.items()})
    synced = clock.now()
    day = synced.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    end = day + timedelta(days=1)

    wait_until(lambda: clock.now() >= day + timedelta(hours=12), WAIT_SECONDS, "midday")
    group.kill(1)
    wait_until(lambda: clock.now() >= day + timedelta(hours=13), WAIT_SECONDS, "an hour on")
    group.restart(1)
    wait_until(lambda: clock.now() >= end + timedelta(hours=1), WAIT_SECONDS, "the day's end")

    for flow_id, (_, every) in EVERY.items():
        wanted = _slots(day, every)

        def started(flow_id: str = flow_id, wanted: list[datetime] = wanted) -> bool:
            done = {slot for slot, state, _ in _fires(group, flow_id)
                    if state == FireState.STARTED.value}
            return set(wanted) <= done
        wait_until(started, WAIT_SECONDS, f"every slot of {flow_id} to start a run",
                   interval=0.5)
        fires = [f for f in _fires(group, flow_id) if day <= f[0] < end]
        slots = sorted(f[0] for f in fires)
        assert slots == wanted, (  # no gap, no duplicate
            flow_id, sorted(set(wanted) - set(slots)), [s for s in slots if slots.count(s) > 1],
            group.log_tail())
        assert {f[1] for f in fires} == {FireState.STARTED.value}
        runs: list[RunRecord] = [r for r in group.runs_of(flow_id)
                                 if r.trigger.scheduled_at is not None
                                 and day <= r.trigger.scheduled_at < end]
        assert sorted(r.trigger.scheduled_at for r in runs) == wanted  # type: ignore[type-var]
        assert {r.id for r in runs} == {f[2] for f in fires}
