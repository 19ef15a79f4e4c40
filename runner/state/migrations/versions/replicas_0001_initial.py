"""Replicas and their heartbeat leases (runner.state.replicas).

Revision ID: replicas_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "replicas_0001"
down_revision = None
branch_labels = ("replicas",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.Column("adopted_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_replicas_adoption", "replicas", ["adopted_by", "heartbeat_at"])


def downgrade() -> None:
    op.drop_table("replicas")
