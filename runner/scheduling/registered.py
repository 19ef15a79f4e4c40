"""The ``registered_flows`` table: one row per flow registered from a repository.

:class:`runner.scheduling.registry.Registry` writes the rows; the ``paused`` flag is set by
the schedule store (:func:`set_paused`) when a flow is paused or resumed. The
table lives here, apart from both, so neither reaches into the other.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, String, Table, Text, select, update
from sqlalchemy.engine import Connection

from runner.errors import FlowNotFound
from runner.state.db import metadata

registered_flows = Table(
    "registered_flows",
    metadata,
    Column("repo", String(200), primary_key=True),
    Column("flow_id", String(100), primary_key=True),
    Column("path", String(500), nullable=False),
    Column("commit_sha", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
)


def set_paused(conn: Connection, repo: str, flow_id: str, paused: bool) -> None:
    """Mark ``repo``'s flow ``flow_id`` paused or not; FlowNotFound if it is unknown."""
    t = registered_flows.c
    result = conn.execute(
        update(registered_flows).where(t.repo == repo, t.flow_id == flow_id).values(paused=paused)
    )
    if result.rowcount == 0:
        raise FlowNotFound(flow_id, _flow_ids(conn, repo))


def _flow_ids(conn: Connection, repo: str) -> list[str]:
    t = registered_flows.c
    return [r[0] for r in conn.execute(select(t.flow_id).where(t.repo == repo))]
