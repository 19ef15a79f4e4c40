"""Durable webhook deliveries: the bot's work queue.

``POST /webhook`` records each delivery by its ``X-GitHub-Delivery`` id before
answering; the primary key makes a redelivered id a no-op, except that a
redelivery of a delivery that failed for good queues it again. Workers claim
pending deliveries with a compare-and-set on ``status`` (so two workers, or two
replicas on PostgreSQL, never process one delivery). Each claim is stamped
with the claiming replica's id (``claimed_by``); when a replica dies, the one
that adopts it puts exactly that replica's ``processing`` deliveries back to
``pending`` (:meth:`DeliveryStore.requeue_claimed_by`), never a live replica's:
nothing acknowledged is lost, nothing is handled twice while its replica lives.

Order of claiming: by *turn*, then priority (commands, then pushes and the
rest, then pull request validation), then arrival. Each repository has a lane
per priority; a new delivery's turn is the turn being served now (the lowest
turn due), or one past its lane's last queued turn if that is later
(start-time fair queuing). So a repository flooding the queue, with PRs or with
comments, takes turns with the others instead of going first; a delivery of a
quiet lane is claimed in the current turn, and a command goes ahead of every
push and PR validation of that turn. A delivery waiting for a retry
(``next_attempt_at`` in the future) is not claimed until then, and keeps its
turn. Claiming is one walk of the claim index.

Recording a delivery notifies ``flowbot_deliveries`` in its transaction
(:mod:`runner.state.notify`) on PostgreSQL, so every replica's workers wake.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from runner.clock import Clock
from runner.state.db import metadata
from runner.state.notify import DELIVERIES, notify_in

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
    Column("priority", Integer, nullable=False, server_default="1"),
    Column("turn", BigInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("pr_number", Integer),
    Column("head_sha", String(64)),
    Column("pr_updated_at", DateTime(timezone=True)),
    Column("claimed_by", String(200)),  # the replica processing it (runner.state.replicas)
    Index("ix_webhook_deliveries_status", "status", "received_at"),
    Index("ix_webhook_deliveries_claim", "status", "turn", "priority", "received_at"),
    Index("ix_webhook_deliveries_lane", "repo", "priority", "status", "turn"),
    Index("ix_webhook_deliveries_pull", "repo", "pr_number"),
    Index("ix_webhook_deliveries_claimed_by", "status", "claimed_by"),
)

# Within a turn, lower is claimed first: a command someone waits for, then pushes
# (and every other event), then the bulk of pull request validation.
PRIORITY_COMMAND = 0
PRIORITY_DEFAULT = 1
PRIORITY_PULL_REQUEST = 2
PRIORITIES = {"issue_comment": PRIORITY_COMMAND, "pull_request": PRIORITY_PULL_REQUEST}
# pull_request actions that validate the head; a newer one of these supersedes
VALIDATING_ACTIONS = ("opened", "synchronize", "reopened")


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
    repo: str | None = None
    priority: int = PRIORITY_DEFAULT
    turn: int = 0
    next_attempt_at: datetime | None = None


def _row(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        event=row.event,
        payload=orjson.loads(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        error=row.error,
        received_at=row.received_at,
        repo=row.repo,
        priority=row.priority,
        turn=row.turn,
        next_attempt_at=row.next_attempt_at,
    )


def _github_time(value: object) -> datetime | None:
    """A GitHub timestamp (``2026-01-01T00:00:00Z``) in UTC, or None."""
    if not isinstance(value, str):
        return None  # absent: the caller falls back to the arrival time
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None  # not a timestamp: the same
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pull_facts(event: str, payload: dict[str, Any]) -> tuple[int | None, str | None,
                                                              datetime | None]:
    """(number, head sha, updated_at) of a ``pull_request`` delivery's pull request."""
    pull = payload.get("pull_request") if event == "pull_request" else None
    if not isinstance(pull, dict):
        return None, None, None  # not about a pull request's head
    number, head = pull.get("number"), pull.get("head")
    sha = head.get("sha") if isinstance(head, dict) else None
    number_ok = isinstance(number, int) and 0 < number < 2**31
    return (number if number_ok else None, _text(sha, 64), _github_time(pull.get("updated_at")))


def _text(value: object, limit: int) -> str | None:
    """``value`` if it is a string that fits its column, else None (odd payloads must
    not fail the group commit of everyone else's deliveries)."""
    return value if isinstance(value, str) and len(value) <= limit else None


def _same_repo(repo: str | None) -> Any:
    return deliveries_table.c.repo.is_(None) if repo is None else (
        deliveries_table.c.repo == repo)


class DeliveryStore:
    """Records, claims and finishes webhook deliveries; claims are stamped with
    ``replica``, the id of this process among the replicas (None: unnamed, as in
    tools and tests that run no replicas)."""

    def __init__(self, engine: Engine, clock: Clock, *, replica: str | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self._replica = replica
        # SQLite has one writer: taking turns here is far cheaper than its busy-wait sleeps
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext())

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._write_lock, self._engine.begin() as conn:
            yield conn

    def _values(self, delivery_id: str, event: str, body: bytes,
                payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        repository = payload.get("repository") or {}
        number, sha, updated = _pull_facts(event, payload)
        return {
            "id": delivery_id,
            "event": event,
            "action": _text(payload.get("action"), 100),
            "repo": _text(repository.get("full_name"), 255) if isinstance(
                repository, dict) else None,
            "payload": body.decode("utf-8"),
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "received_at": now,
            "priority": PRIORITIES.get(event, PRIORITY_DEFAULT),
            "turn": 0,
            "next_attempt_at": now,
            "pr_number": number,
            "head_sha": sha,
            "pr_updated_at": (updated or now) if number is not None else None,
        }

    def record(self, delivery_id: str, event: str, body: bytes, payload: dict[str, Any]) -> bool:
        """Queue a new delivery; False if that id was recorded before (a redelivery),
        unless it had failed for good: then it is queued again, and True."""
        return self.record_many([(delivery_id, event, body, payload)])[0]

    def record_many(self, items: Sequence[NewDelivery]) -> list[bool]:
        """Store several deliveries in one transaction (group commit); for each,
        whether it was queued (new, or a redelivery of a failed one). A duplicate
        id inside the batch counts once."""
        now = self._clock.now()
        rows = [self._values(*item, now) for item in items]
        t = deliveries_table
        try:
            with self._writing() as conn:
                known = dict(conn.execute(
                    select(t.c.id, t.c.status).where(t.c.id.in_({r["id"] for r in rows}))).all())
                fresh: dict[str, dict[str, Any]] = {}
                for row in rows:
                    if row["id"] not in known:
                        fresh.setdefault(row["id"], row)
                if fresh:
                    self._take_turns(conn, list(fresh.values()), now)
                    conn.execute(insert(t), list(fresh.values()))
                again = self._redelivered(conn, list(known), now) if known else set()
                if fresh or again:
                    notify_in(conn, DELIVERIES)  # every replica's workers, at commit
        except IntegrityError:
            if len(rows) == 1:
                return [False]  # another replica recorded it between our check and insert
            return [self.record(*item) for item in items]  # sort out the race row by row
        queued = {id(row) for row in fresh.values()}
        answers = []
        for row in rows:
            answers.append(id(row) in queued or row["id"] in again)
            again.discard(row["id"])  # a duplicate inside the batch counts once
        return answers

    def _take_turns(self, conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
        """Give each new row its turn: the turn now being served, or one past its
        lane's (repository and priority) last queued turn if that is later."""
        t = deliveries_table
        pending = t.c.status == DeliveryStatus.PENDING.value
        serving = conn.execute(select(t.c.turn).where(pending, t.c.next_attempt_at <= now)
                               .order_by(t.c.turn).limit(1)).scalar() or 0
        last: dict[tuple[str | None, int], int] = {}
        for row in rows:
            lane = (row["repo"], row["priority"])
            if lane not in last:
                last[lane] = conn.execute(
                    select(func.max(t.c.turn)).where(_same_repo(row["repo"]),
                                                     t.c.priority == row["priority"], pending)
                ).scalar() or 0
            row["turn"] = last[lane] = max(serving, last[lane] + 1)

    def _redelivered(self, conn: Connection, ids: list[str], now: datetime) -> set[str]:
        """GitHub's "Redeliver": a delivery that failed for good is queued again with
        a fresh retry budget; one waiting for a retry is tried now. Returns the ids
        of the failed ones queued again."""
        t = deliveries_table
        conn.execute(update(t).where(t.c.id.in_(ids),
                                     t.c.status == DeliveryStatus.PENDING.value,
                                     t.c.next_attempt_at > now)
                     .values(next_attempt_at=now))
        requeued = conn.execute(
            update(t).where(t.c.id.in_(ids), t.c.status == DeliveryStatus.FAILED.value)
            .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now,
                    finished_at=None)
            .returning(t.c.id)).scalars().all()
        if requeued:
            log.info("failed deliveries redelivered", extra={"deliveries": list(requeued)})
        return set(requeued)

    def claim(self, limit: int = 1) -> list[Delivery]:
        """Take up to ``limit`` due pending deliveries, marking them processing: by
        turn (fair across repositories), then priority, then arrival.

        One transaction: select the ids (on PostgreSQL locking them, and skipping
        rows another worker is taking: ``SKIP LOCKED``), then ``UPDATE … RETURNING``
        with a status re-check; SQLite serializes writers. Two statements rather
        than ``IN (subquery)``: PostgreSQL may evaluate a locking subquery again
        per row and so return more than ``limit``.
        """
        t = deliveries_table
        order = (t.c.turn, t.c.priority, t.c.received_at)
        due = (select(t.c.id)
               .where(t.c.status == DeliveryStatus.PENDING.value,
                      t.c.next_attempt_at <= self._clock.now())
               .order_by(*order).limit(limit).with_for_update(skip_locked=True))
        with self._writing() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []  # nothing due
            rows = conn.execute(
                update(t).where(t.c.id.in_(ids), t.c.status == DeliveryStatus.PENDING.value)
                .values(status=DeliveryStatus.PROCESSING.value, attempts=t.c.attempts + 1,
                        claimed_by=self._replica)
                .returning(*t.c)).all()
        return sorted((_row(r) for r in rows), key=lambda d: (d.turn, d.priority, d.received_at))

    def finish_many(self, outcomes: Sequence[Outcome]) -> None:
        """Mark several claimed deliveries done (error None) or failed, in one write."""
        if not outcomes:
            return  # nothing finished: no transaction
        t = deliveries_table
        now = self._clock.now()
        done = [delivery_id for delivery_id, error in outcomes if not error]
        with self._writing() as conn:
            if done:
                conn.execute(update(t).where(t.c.id.in_(done), self._still_mine())
                             .values(status=DeliveryStatus.DONE.value, error=None,
                                     finished_at=now))
            for delivery_id, error in outcomes:
                if error:
                    conn.execute(update(t).where(t.c.id == delivery_id, self._still_mine())
                                 .values(status=DeliveryStatus.FAILED.value, error=error,
                                         finished_at=now))

    def _still_mine(self) -> ColumnElement[bool]:
        """Processing under this store's claim: the fence that keeps a replica which
        stalled past its lease from writing the outcome of a delivery its adopter
        requeued (:meth:`requeue_claimed_by`) and another replica now handles."""
        t = deliveries_table
        mine = (t.c.claimed_by.is_(None) if self._replica is None
                else t.c.claimed_by == self._replica)
        return and_(t.c.status == DeliveryStatus.PROCESSING.value, mine)

    def still_claimed(self, delivery_id: str) -> bool:
        """True while ``delivery_id`` is still processing under this store's claim
        (see :meth:`_still_mine`); a worker asks before it starts a delivery it
        claimed a while ago."""
        t = deliveries_table
        with self._engine.connect() as conn:
            found = conn.execute(select(t.c.id)
                                 .where(t.c.id == delivery_id, self._still_mine())).first()
        return found is not None

    def retry_later(self, delivery_id: str, error: str, delay: float) -> datetime:
        """A claimed delivery failed for a passing reason: back to pending, due in
        ``delay`` seconds, keeping its turn and the error. Returns when it is due."""
        t = deliveries_table
        due = self._clock.now() + timedelta(seconds=delay)
        with self._writing() as conn:
            conn.execute(update(t).where(t.c.id == delivery_id, self._still_mine())
                         .values(status=DeliveryStatus.PENDING.value, error=error,
                                 next_attempt_at=due))
        return due

    def superseded_by(self, delivery_id: str) -> str | None:
        """For a ``pull_request`` delivery: the id of a newer opened, synchronize or
        reopened delivery of the same pull request that is queued, in progress or
        done (so the newest head is or will be validated), else None. Newer means a
        later ``pull_request.updated_at``, then a later arrival: GitHub does not
        promise to deliver in order."""
        t = deliveries_table
        with self._engine.connect() as conn:
            me = conn.execute(select(t.c.repo, t.c.pr_number, t.c.pr_updated_at, t.c.received_at)
                              .where(t.c.id == delivery_id)).first()
            if me is None or me.pr_number is None:
                return None  # not recorded (a direct dispatch), or not about a PR head
            later = or_(t.c.pr_updated_at > me.pr_updated_at,
                        and_(t.c.pr_updated_at == me.pr_updated_at,
                             t.c.received_at > me.received_at))
            live = (DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value,
                    DeliveryStatus.DONE.value)
            query = (select(t.c.id)
                     .where(_same_repo(me.repo), t.c.pr_number == me.pr_number,
                            t.c.event == "pull_request", t.c.action.in_(VALIDATING_ACTIONS),
                            t.c.status.in_(live), t.c.id != delivery_id, later)
                     .limit(1))
            found = conn.execute(query).scalar()
        return None if found is None else str(found)

    def requeue_claimed_by(self, dead: Sequence[str], *, unclaimed: bool = False) -> int:
        """Deliveries the ``dead`` replicas left processing go back to pending (due at
        once, keeping their turn), and with ``unclaimed`` also those processing under
        no replica id (claimed before replicas had ids, or by an unnamed store: pass
        it only when no other replica lives). Returns how many."""
        t = deliveries_table
        processing = t.c.status == DeliveryStatus.PROCESSING.value
        whose: ColumnElement[bool] = t.c.claimed_by.in_(list(dead))
        if unclaimed:
            whose = or_(whose, t.c.claimed_by.is_(None))
        with self._writing() as conn:
            count = conn.execute(
                update(t).where(processing, whose)
                .values(status=DeliveryStatus.PENDING.value, claimed_by=None)
            ).rowcount
        if count:
            log.info("requeued deliveries of dead replicas",
                     extra={"count": count, "dead": list(dead)})
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
