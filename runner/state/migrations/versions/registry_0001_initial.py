"""Registered flows, per repository (runner.scheduling.registry).

Revision ID: registry_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_flows",
        sa.Column("repo", sa.String(200), primary_key=True),
        sa.Column("flow_id", sa.String(100), primary_key=True),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registered_flows")
