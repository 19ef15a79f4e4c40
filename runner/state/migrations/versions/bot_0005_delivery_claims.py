"""Which replica claimed a delivery (bot.intake.deliveries), so only the work of a
dead replica goes back to the queue.

Revision ID: bot_0005
Revises: bot_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "bot_0005"
down_revision = "bot_0004"
branch_labels = None
depends_on = None

_TABLE = "webhook_deliveries"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("claimed_by", sa.String(200)))
    op.create_index("ix_webhook_deliveries_claimed_by", _TABLE, ["status", "claimed_by"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_claimed_by", _TABLE)
    op.drop_column(_TABLE, "claimed_by")
