"""What the run store hands out: statuses, triggers and read-only rows.

Pure data; :mod:`runner.state.store` reads and writes them, the engine, the bot's run
pages and comments read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """State of a run, a task of a run, or one attempt of a task."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING)


TERMINAL = frozenset(s for s in Status if s.terminal)
ACTIVE = frozenset((Status.QUEUED, Status.RUNNING))


class TriggerType(StrEnum):
    MANUAL = "manual"  # a /run comment or an API call
    SCHEDULE = "schedule"  # a cron trigger fired
    CLI = "cli"  # flowbot run on a developer's machine


@dataclass(frozen=True)
class Trigger:
    """Who or what started a run."""

    type: TriggerType
    actor: str = ""  # GitHub login, schedule id, or local user
    scheduled_at: datetime | None = None  # the cron slot, for scheduled runs


@dataclass(frozen=True)
class RunRecord:
    id: str
    repo: str
    flow_id: str
    flow_digest: str
    flow_data: dict[str, Any]  # the flow definition the run executes
    flow_path: str
    commit: str | None
    trigger: Trigger
    inputs: dict[str, Any]  # coerced values; never secrets
    status: Status
    error: str | None
    failed_task: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None = None  # the replica executing it; None while queued
    cancel_requested_at: datetime | None = None  # asked of a replica not executing it


@dataclass(frozen=True)
class TaskRow:
    """One task of a run as a whole: its latest state over all attempts."""

    run_id: str
    task_id: str
    position: int
    handler: bool  # an `errors` task
    status: Status
    attempts: int
    exit_code: int | None
    reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class AttemptRow:
    run_id: str
    task_id: str
    attempt: int  # 1-based
    status: Status
    exit_code: int | None
    handle: str | None  # backend handle (container id, pid)
    reason: str | None
    log_path: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Transition:
    run_id: str
    task_id: str | None  # None: the run itself
    attempt: int | None
    from_status: Status | None
    to_status: Status
    reason: str | None
    at: datetime


class EventKind(StrEnum):
    STARTED = "started"  # the run left the queue
    TASK = "task"  # a task changed state (task_id says which)
    FINISHED = "finished"  # the run reached a terminal status
    QUEUED = "queued"  # the run went back to the queue (the engine left before it started)


@dataclass(frozen=True)
class RunEvent:
    """What listeners (the bot's status and comment updaters) are told."""

    run_id: str
    kind: EventKind
    task_id: str | None = None
    status: Status | None = None  # the run's (STARTED/FINISHED) or the task's (TASK)
