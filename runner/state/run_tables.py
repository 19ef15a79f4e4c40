"""The run tables on the shared :data:`runner.state.db.metadata`, and row conversion.

The schema itself is created by the ``runs`` migration branch
(``runner/state/migrations/versions/runs_0001_initial.py``); these declarations must
match it. Times are stored as aware UTC; SQLite returns them naive, so every
read goes through :func:`aware`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from runner.state.db import metadata
from runner.state.records import (
    AttemptRow,
    RunRecord,
    Status,
    TaskRow,
    Transition,
    Trigger,
    TriggerType,
)

_TS = sa.DateTime(timezone=True)


def _fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.id", ondelete="CASCADE")


runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("flow_id", sa.String(64), nullable=False),
    sa.Column("flow_digest", sa.String(64), nullable=False),
    sa.Column("flow_json", sa.Text, nullable=False),
    sa.Column("flow_path", sa.String(512), nullable=False),
    sa.Column("commit", sa.String(64)),
    sa.Column("trigger_type", sa.String(16), nullable=False),
    sa.Column("trigger_actor", sa.String(255), nullable=False),
    sa.Column("scheduled_at", _TS),
    sa.Column("inputs_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("failed_task", sa.String(64)),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("started_at", _TS),
    sa.Column("finished_at", _TS),
    # runs_0002: "<delivery id>:<command index>" for a run a comment started.
    sa.Column("request_key", sa.String(255)),
    sa.Index("ux_runs_request_key", "request_key", unique=True),
    # runs_0003: newest first, for the keyset pages of /runs and each flow's last runs.
    sa.Index("ix_runs_created_id", "created_at", "id"),
    sa.Index("ix_runs_repo_flow_created", "repo", "flow_id", "created_at", "id"),
    sa.Index("ix_runs_repo_created", "repo", "created_at", "id"),
    # runs_0004: the replica executing the run (NULL while queued) and a cancel asked
    # of a replica that does not execute it.
    sa.Column("owner", sa.String(128)),
    sa.Column("cancel_requested_at", _TS),
    sa.Index("ix_runs_status_owner", "status", "owner"),
    # runs_0006: the per-user budget of runs started by hand (FLOWBOT_RUNS_PER_USER_PER_HOUR)
    sa.Index("ix_runs_actor_repo_created", "trigger_actor", "repo", "created_at"),
)

run_tasks = sa.Table(
    "run_tasks", metadata,
    sa.Column("run_id", sa.String(32), _fk(), primary_key=True),
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("handler", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("started_at", _TS),
    sa.Column("finished_at", _TS),
)

task_attempts = sa.Table(
    "task_attempts", metadata,
    sa.Column("run_id", sa.String(32), _fk(), primary_key=True),
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("handle", sa.String(128)),
    sa.Column("reason", sa.Text),
    sa.Column("log_path", sa.String(1024)),
    sa.Column("started_at", _TS),
    sa.Column("finished_at", _TS),
)

task_outputs = sa.Table(
    "task_outputs", metadata,
    sa.Column("run_id", sa.String(32), _fk(), primary_key=True),
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

run_transitions = sa.Table(
    "run_transitions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), _fk(), nullable=False),
    sa.Column("task_id", sa.String(64)),
    sa.Column("attempt", sa.Integer),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", _TS, nullable=False),
)


def aware(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_record(row: Any) -> RunRecord:
    created = aware(row.created_at)
    assert created is not None
    return RunRecord(
        id=row.id, repo=row.repo, flow_id=row.flow_id, flow_digest=row.flow_digest,
        flow_data=json.loads(row.flow_json), flow_path=row.flow_path, commit=row.commit,
        trigger=Trigger(TriggerType(row.trigger_type), row.trigger_actor, aware(row.scheduled_at)),
        inputs=json.loads(row.inputs_json), status=Status(row.status), error=row.error,
        failed_task=row.failed_task, created_at=created,
        started_at=aware(row.started_at), finished_at=aware(row.finished_at),
        owner=row.owner, cancel_requested_at=aware(row.cancel_requested_at),
    )


def task_row(row: Any, outputs: dict[str, str]) -> TaskRow:
    return TaskRow(
        run_id=row.run_id, task_id=row.task_id, position=row.position, handler=row.handler,
        status=Status(row.status), attempts=row.attempts, exit_code=row.exit_code,
        reason=row.reason, started_at=aware(row.started_at), finished_at=aware(row.finished_at),
        outputs=outputs,
    )


def attempt_row(row: Any) -> AttemptRow:
    return AttemptRow(
        run_id=row.run_id, task_id=row.task_id, attempt=row.attempt, status=Status(row.status),
        exit_code=row.exit_code, handle=row.handle, reason=row.reason, log_path=row.log_path,
        started_at=aware(row.started_at), finished_at=aware(row.finished_at),
    )


def transition(row: Any) -> Transition:
    at = aware(row.at)
    assert at is not None
    return Transition(
        run_id=row.run_id, task_id=row.task_id, attempt=row.attempt,
        from_status=Status(row.from_status) if row.from_status else None,
        to_status=Status(row.to_status), reason=row.reason, at=at,
    )
