"""Replies to command comments and the refusal rate limit (bot.handlers.command_replies).

Revision ID: commands_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "commands_0001"
down_revision = None
branch_labels = ("commands",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_replies",
        sa.Column("comment_key", sa.String(300), primary_key=True),
        sa.Column("repo", sa.String(255), nullable=False),
        sa.Column("issue_number", sa.Integer, nullable=False),
        sa.Column("reply_id", sa.BigInteger),
        sa.Column("parts_json", sa.Text, nullable=False),
    )
    op.create_index("ux_command_replies_reply", "command_replies", ["reply_id"], unique=True)
    op.create_table(
        "command_refusals",
        sa.Column("repo", sa.String(255), primary_key=True),
        sa.Column("issue_number", sa.Integer, primary_key=True),
        sa.Column("login", sa.String(255), primary_key=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("command_refusals")
    op.drop_index("ux_command_replies_reply", table_name="command_replies")
    op.drop_table("command_replies")
