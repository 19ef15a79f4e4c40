"""Runs, their tasks, attempts, outputs and status transitions.

Revision ID: runs_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "runs_0001"
down_revision = None
branch_labels = ("runs",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
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
    )
    op.create_index("ix_runs_flow_status", "runs", ["repo", "flow_id", "status"])
    op.create_index("ix_runs_status_created", "runs", ["status", "created_at"])
    op.create_table(
        "run_tasks",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
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
    op.create_table(
        "task_attempts",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
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
    op.create_table(
        "task_outputs",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "run_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("task_id", sa.String(64)),
        sa.Column("attempt", sa.Integer),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("run_transitions", "task_outputs", "task_attempts", "run_tasks", "runs"):
        op.drop_table(table)
