"""Fire records: every slot the scheduler (or a resume) decided about, one row
per (repo, flow, trigger, slot) under a unique key — fired, started (with its
run id), skipped (with the reason) or failed — written before any run starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runner.state.db import metadata

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False),
    Column("flow_id", String(100), nullable=False),
    Column("trigger_id", String(64), nullable=False),
    Column("slot_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("run_id", String(64), nullable=True),
    Column("inputs", Text, nullable=False, default="{}"),
    Column("instance_id", String(200), nullable=False, default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("repo", "flow_id", "trigger_id", "slot_at", name="uq_schedule_fires_slot"),
    Index("ix_schedule_fires_state", "state", "claimed_at"),
)


class FireState(StrEnum):
    FIRED = "fired"  # claimed; the run is being started
    STARTED = "started"  # the sink started run ``run_id``
    SKIPPED = "skipped"  # not run, ``reason`` says why
    FAILED = "failed"  # the sink refused it with an error, ``reason`` holds it


class SkipReason(StrEnum):
    CATCHUP_NONE = "missed: catch-up policy none"
    CATCHUP_LATEST = "missed: catch-up policy latest runs only the most recent slot"
    CATCHUP_LIMIT = "missed: beyond the catch-up limit"
    PAUSED = "paused"
    DECLINED = "not started by the runner (concurrency policy)"


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands back naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Fire:
    """One slot of one schedule, as recorded in ``schedule_fires``."""

    id: int
    repo: str
    flow_id: str
    trigger_id: str
    slot_at: datetime  # aware UTC
    inputs: dict[str, Any] = field(default_factory=dict)
    state: FireState = FireState.FIRED
    reason: str = ""
    run_id: str | None = None

    @property
    def key(self) -> str:
        """Stable identity of the slot: the sink's idempotency key."""
        return f"{self.repo}:{self.flow_id}:{self.trigger_id}@{self.slot_at:%Y-%m-%dT%H:%M:%SZ}"


def fire_from_row(row: Any) -> Fire:
    """A :class:`Fire` from a ``schedule_fires`` row (or a dict of its values plus ``id``)."""
    values: dict[str, Any] = dict(row) if isinstance(row, dict) else dict(row._mapping)
    return Fire(
        id=values["id"], repo=values["repo"], flow_id=values["flow_id"],
        trigger_id=values["trigger_id"], slot_at=as_utc(values["slot_at"]),
        inputs=json.loads(values["inputs"]), state=FireState(values["state"]),
        reason=values["reason"] or "", run_id=values["run_id"],
    )


FireKey = tuple[str, str, str, datetime]


def record_fires(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[FireKey, int]:
    """Insert fire rows, ignoring slots already recorded (another instance or an
    earlier life claimed them); the keys actually inserted, with their row ids."""
    if not rows:
        return {}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    t = schedule_fires.c
    statement = (
        dialect.insert(schedule_fires)
        .on_conflict_do_nothing(index_elements=["repo", "flow_id", "trigger_id", "slot_at"])
        .returning(t.id, t.repo, t.flow_id, t.trigger_id, t.slot_at)
    )
    result = conn.execute(statement, list(rows))
    return {(r[1], r[2], r[3], as_utc(r[4])): r[0] for r in result}
