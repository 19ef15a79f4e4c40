"""Where a run reports to: the repository, its installation, the issue or PR
and the reply comment to edit, the commit its statuses go on.

Stored in the database so a run that outlives the process (a restart mid-run)
is still reported to the same comment. ``final_state`` records the last state
posted, so the final report is sent once even if events repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, String, Table, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from runner.state.db import metadata

run_reports = Table(
    "run_reports",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("repo", String(255), nullable=False),
    Column("installation_id", BigInteger),
    Column("issue_number", Integer),
    Column("comment_id", BigInteger),
    Column("sha", String(64)),
    Column("flow_id", String(100), nullable=False),
    Column("final_state", String(16)),
)


@dataclass(frozen=True)
class RunReport:
    run_id: str
    repo: str
    installation_id: int | None
    issue_number: int | None
    comment_id: int | None
    sha: str | None
    flow_id: str
    final_state: str | None = None


class RunReports:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, report: RunReport) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(run_reports).values(**report.__dict__))

    def ensure(self, report: RunReport) -> None:
        """Add ``report`` unless the run has one already."""
        if self.get(report.run_id) is not None:
            return  # already there
        try:
            self.add(report)
        except IntegrityError:
            return  # another thread added it first

    def get(self, run_id: str) -> RunReport | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(run_reports).where(run_reports.c.run_id == run_id)
            ).mappings().first()
        return None if row is None else RunReport(**dict(row))

    def set_comment(self, run_id: str, comment_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(run_reports).where(run_reports.c.run_id == run_id)
                         .values(comment_id=comment_id))

    def claim_final(self, run_id: str, state: str) -> bool:
        """Record ``state`` as reported; False if it was reported already."""
        t = run_reports.c
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(run_reports)
                .where(t.run_id == run_id, (t.final_state.is_(None)) | (t.final_state != state))
                .values(final_state=state)
            ).rowcount
        return bool(changed)
