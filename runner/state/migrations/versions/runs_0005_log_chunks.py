"""Task logs in the database, so every replica on one PostgreSQL reads them.

``log_chunks`` holds each attempt's log as chunks of at most 64 KiB in ``seq``
order, appended as the task writes (``runner/running/dblogs.py``); a read of a
byte range finds its chunks by ``start_offset``. Created on SQLite too (the
same schema everywhere), where logs stay files by default.

Revision ID: runs_0005
Revises: runs_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "runs_0005"
down_revision = "runs_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_chunks",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("start_offset", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_log_chunks_offset", "log_chunks",
                    ["run_id", "task_id", "attempt", "start_offset"])


def downgrade() -> None:
    op.drop_index("ix_log_chunks_offset", table_name="log_chunks")
    op.drop_table("log_chunks")
