"""Durable webhook deliveries: the bot's work queue.

``POST /webhook`` records each delivery by its ``X-GitHub-Delivery`` id before
answering; the primary key makes a redelivered id a no-op. Workers claim
pending deliveries with a compare-and-set on ``status`` (so two workers, or two
replicas on PostgreSQL, never process one delivery), and on start-up every
delivery left ``processing`` by a crash goes back to ``pending``: nothing
acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from runner.cron import Clock
from runner.db import metadata

log = logging.getLogger(__name__)

deliveries_table = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("event", String(100), nullable=False),
    Column("action", String(100)),
    Column("repo", String(255)),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)


NewDelivery = tuple[str, str, bytes, dict[str, Any]]  # id, event, raw body, parsed payload
Outcome = tuple[str, str | None]  # delivery id, error text (None when it succeeded)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    error: str | None
    received_at: datetime


def _row(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        event=row.event,
        payload=orjson.loads(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        error=row.error,
        received_at=row.received_at,
    )


class DeliveryStore:
    """Records, claims and finishes webhook deliveries."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        # SQLite has one writer: taking turns here is far cheaper than its busy-wait sleeps
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext())

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._write_lock, self._engine.begin() as conn:
            yield conn

    def _values(self, delivery_id: str, event: str, body: bytes,
                payload: dict[str, Any]) -> dict[str, Any]:
        repository = payload.get("repository") or {}
        action = payload.get("action")
        return {
            "id": delivery_id,
            "event": event,
            "action": action if isinstance(action, str) else None,
            "repo": repository.get("full_name") if isinstance(repository, dict) else None,
            "payload": body.decode("utf-8"),
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "received_at": self._clock.now(),
        }

    def record(self, delivery_id: str, event: str, body: bytes, payload: dict[str, Any]) -> bool:
        """Store a new delivery; False if that id was recorded before (a redelivery)."""
        return self.record_many([(delivery_id, event, body, payload)])[0]

    def record_many(self, items: Sequence[NewDelivery]) -> list[bool]:
        """Store several deliveries in one transaction (group commit); for each,
        whether it was new. A duplicate id inside the batch counts once."""
        rows = [self._values(*item) for item in items]
        t = deliveries_table
        try:
            with self._writing() as conn:
                known = set(conn.execute(
                    select(t.c.id).where(t.c.id.in_({r["id"] for r in rows}))).scalars())
                fresh: dict[str, dict[str, Any]] = {}
                for row in rows:
                    if row["id"] not in known:
                        fresh.setdefault(row["id"], row)
                if fresh:
                    conn.execute(insert(t), list(fresh.values()))
        except IntegrityError:
            if len(rows) == 1:
                return [False]  # another replica recorded it between our check and insert
            return [self.record(*item) for item in items]  # sort out the race row by row
        firsts = {id(row) for row in fresh.values()}
        return [id(row) in firsts for row in rows]

    def claim(self, limit: int = 1) -> list[Delivery]:
        """Take up to ``limit`` pending deliveries, oldest first, marking them processing.

        One ``UPDATE … RETURNING``: on PostgreSQL a row another worker took in the
        meantime fails the status re-check and is not returned; SQLite serializes writers.
        """
        t = deliveries_table
        pending = (select(t.c.id).where(t.c.status == DeliveryStatus.PENDING.value)
                   .order_by(t.c.received_at).limit(limit).scalar_subquery())
        query = (update(t)
                 .where(t.c.id.in_(pending), t.c.status == DeliveryStatus.PENDING.value)
                 .values(status=DeliveryStatus.PROCESSING.value, attempts=t.c.attempts + 1)
                 .returning(*t.c))
        with self._writing() as conn:
            rows = conn.execute(query).all()
        return sorted((_row(r) for r in rows), key=lambda d: d.received_at)

    def finish(self, delivery_id: str, error: str | None = None) -> None:
        """Mark a claimed delivery done, or failed with ``error``."""
        self.finish_many([(delivery_id, error)])

    def finish_many(self, outcomes: Sequence[Outcome]) -> None:
        """Mark several claimed deliveries done (error None) or failed, in one write."""
        if not outcomes:
            return  # nothing finished: no transaction
        t = deliveries_table
        now = self._clock.now()
        done = [delivery_id for delivery_id, error in outcomes if not error]
        with self._writing() as conn:
            if done:
                conn.execute(update(t).where(t.c.id.in_(done))
                             .values(status=DeliveryStatus.DONE.value, error=None,
                                     finished_at=now))
            for delivery_id, error in outcomes:
                if error:
                    conn.execute(update(t).where(t.c.id == delivery_id)
                                 .values(status=DeliveryStatus.FAILED.value, error=error,
                                         finished_at=now))

    def requeue_unfinished(self) -> int:
        """After a crash: deliveries left processing go back to pending. Returns how many."""
        t = deliveries_table
        with self._writing() as conn:
            count = conn.execute(
                update(t)
                .where(t.c.status == DeliveryStatus.PROCESSING.value)
                .values(status=DeliveryStatus.PENDING.value)
            ).rowcount
        if count:
            log.info("requeued unfinished deliveries", extra={"count": count})
        return int(count)

    def installation_for(self, repo: str) -> int | None:
        """The App installation of ``repo`` named by its latest delivery, if any (so a
        scheduled run can be reported after a restart, before any new webhook)."""
        t = deliveries_table
        query = (select(t.c.payload).where(t.c.repo == repo)
                 .order_by(t.c.received_at.desc()).limit(1))
        with self._engine.connect() as conn:
            payload = conn.execute(query).scalar()
        installation = json.loads(payload).get("installation") if payload else None
        value = installation.get("id") if isinstance(installation, dict) else None
        return value if isinstance(value, int) else None

    def get(self, delivery_id: str) -> Delivery | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(deliveries_table).where(deliveries_table.c.id == delivery_id)
            ).first()
        return None if row is None else _row(row)

    def count(self, status: DeliveryStatus | None = None) -> int:
        query = select(deliveries_table.c.id)
        if status is not None:
            query = query.where(deliveries_table.c.status == status.value)
        with self._engine.connect() as conn:
            return len(conn.execute(query).all())
