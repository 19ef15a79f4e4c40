"""Fair, prioritized and retried deliveries (bot.intake.deliveries): a turn per
repository lane, a priority per event kind within a turn, the time of the next
attempt, and the pull request and head a ``pull_request`` delivery is about (to
skip superseded heads).

Revision ID: bot_0003
Revises: bot_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "bot_0003"
down_revision = "bot_0002"
branch_labels = None
depends_on = None

_TABLE = "webhook_deliveries"
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("priority", sa.Integer, nullable=False,
                                    server_default="1"))
    op.add_column(_TABLE, sa.Column("turn", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column(_TABLE, sa.Column("next_attempt_at", _TS))
    op.add_column(_TABLE, sa.Column("pr_number", sa.Integer))
    op.add_column(_TABLE, sa.Column("head_sha", sa.String(64)))
    op.add_column(_TABLE, sa.Column("pr_updated_at", _TS))
    # deliveries queued before this revision are due at once, in arrival order
    op.execute(f"UPDATE {_TABLE} SET next_attempt_at = received_at")
    op.execute(f"UPDATE {_TABLE} SET priority = 0 WHERE event = 'issue_comment'")
    op.execute(f"UPDATE {_TABLE} SET priority = 2 WHERE event = 'pull_request'")
    op.create_index("ix_webhook_deliveries_claim", _TABLE,
                    ["status", "turn", "priority", "received_at"])
    op.create_index("ix_webhook_deliveries_lane", _TABLE,
                    ["repo", "priority", "status", "turn"])
    op.create_index("ix_webhook_deliveries_pull", _TABLE, ["repo", "pr_number"])


def downgrade() -> None:
    for name in ("pull", "lane", "claim"):
        op.drop_index(f"ix_webhook_deliveries_{name}", _TABLE)
    for column in ("pr_updated_at", "head_sha", "pr_number", "next_attempt_at", "turn",
                   "priority"):
        op.drop_column(_TABLE, column)
