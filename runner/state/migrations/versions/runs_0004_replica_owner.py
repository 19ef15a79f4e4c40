"""Runs remember which replica executes them, and a cancel asked of another replica.

``owner`` is the id of the replica (one flowbot process) that claimed the run
(QUEUED -> RUNNING); NULL while queued, and on runs started before replicas
existed, which any replica may adopt. ``cancel_requested_at`` is set when a
replica that does not execute the run is asked to cancel it; the owner polls
for it and cancels. The index serves both: each replica's running runs.

Revision ID: runs_0004
Revises: runs_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "runs_0004"
down_revision = "runs_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_index("ix_runs_status_owner", "runs", ["status", "owner"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_owner", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_requested_at")
        batch.drop_column("owner")
