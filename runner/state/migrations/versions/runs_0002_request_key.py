"""A run started by a request (a ``/run`` comment) remembers which one.

``request_key`` is ``<delivery id>:<command index>`` for runs started from a
comment, NULL otherwise. The unique index makes a replayed delivery find the
run it already started instead of starting a second one (NULLs never clash).

Revision ID: runs_0002
Revises: runs_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "runs_0002"
down_revision = "runs_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("request_key", sa.String(255), nullable=True))
    op.create_index("ux_runs_request_key", "runs", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_runs_request_key", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("request_key")
