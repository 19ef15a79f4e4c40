"""Web sessions kept in the database (bot.web.sessions), so any replica serves a
signed-in user: the cookie holds only a random session id; the row (keyed by that
id's SHA-256) holds the login, the repositories they read and when that was checked,
the user's GitHub token encrypted (Fernet), and when the session expires.

Revision ID: bot_0004
Revises: bot_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "bot_0004"
down_revision = "bot_0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("login", sa.String(100), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("repos", sa.Text, nullable=False),
        sa.Column("checked_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_expires_at", "web_sessions")
    op.drop_table("web_sessions")
