"""Where each run started from a comment reports to (bot.handlers.run_reports).

Revision ID: bot_0002
Revises: bot_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "bot_0002"
down_revision = "bot_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_reports",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("repo", sa.String(255), nullable=False),
        sa.Column("installation_id", sa.BigInteger),
        sa.Column("issue_number", sa.Integer),
        sa.Column("comment_id", sa.BigInteger),
        sa.Column("sha", sa.String(64)),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("final_state", sa.String(16)),
    )


def downgrade() -> None:
    op.drop_table("run_reports")
