"""Schedule rows and fire records (runner.scheduling.schedules).

Revision ID: schedules_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "schedules_0001"
down_revision = None
branch_labels = ("schedules",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("catchup", sa.String(16), nullable=False),
        sa.Column("catchup_limit", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("next_fire_at", _TS, nullable=True),
        sa.Column("held_fire_at", _TS, nullable=True),
        sa.Column("last_fire_at", _TS, nullable=True),
        sa.Column("last_run_id", sa.String(64), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("repo", "flow_id", "trigger_id", name="uq_schedules_trigger"),
    )
    op.create_index("ix_schedules_next_fire_at", "schedules", ["next_fire_at"])
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("slot_at", _TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("instance_id", sa.String(200), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("claimed_at", _TS, nullable=True),
        sa.UniqueConstraint(
            "repo", "flow_id", "trigger_id", "slot_at", name="uq_schedule_fires_slot"
        ),
    )
    op.create_index("ix_schedule_fires_state", "schedule_fires", ["state", "claimed_at"])


def downgrade() -> None:
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
