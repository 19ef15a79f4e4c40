"""Webhook deliveries, recorded durably before they are acknowledged (bot.intake.deliveries).

Revision ID: bot_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "bot_0001"
down_revision = None
branch_labels = ("bot",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100)),
        sa.Column("repo", sa.String(255)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
    )
    op.create_index("ix_webhook_deliveries_status", "webhook_deliveries", ["status", "received_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
