"""Runs read newest first stay fast with a million rows.

``/runs`` pages through every run newest first with a keyset cursor
``(created_at, id)``, and ``/`` reads each flow's last runs. Without these
indexes both sort the whole table (or the flow's whole history) on every page.

Revision ID: runs_0003
Revises: runs_0002
"""

from alembic import op

revision = "runs_0003"
down_revision = "runs_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_created_id", "runs", ["created_at", "id"])
    op.create_index("ix_runs_repo_flow_created", "runs", ["repo", "flow_id", "created_at", "id"])
    op.create_index("ix_runs_repo_created", "runs", ["repo", "created_at", "id"])


def downgrade() -> None:
    for name in ("ix_runs_repo_created", "ix_runs_repo_flow_created", "ix_runs_created_id"):
        op.drop_index(name, table_name="runs")
