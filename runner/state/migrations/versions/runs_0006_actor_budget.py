"""An index for the per-user budget of runs started by hand: the runs one actor
started of one repository in the last hour (FLOWBOT_RUNS_PER_USER_PER_HOUR) are
counted on every ``/run``, Run form and re-run.

Revision ID: runs_0006
Revises: runs_0005
"""

from alembic import op

revision = "runs_0006"
down_revision = "runs_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_actor_repo_created", "runs",
                    ["trigger_actor", "repo", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_actor_repo_created", table_name="runs")
