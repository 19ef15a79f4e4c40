"""Replica identity and liveness: who is alive, and who adopts the work of the dead.

Every ``flowbot serve`` process registers a row in ``replicas`` under a new id
each start (``<host>-<pid>-<4 hex>``), beats every ``heartbeat`` seconds and
holds a lease of ``lease`` seconds. Liveness is judged by the database's clock
(``CURRENT_TIMESTAMP`` and kin), never a process's clock: replicas on hosts
whose clocks disagree, or a test's scaled clock, still agree on who is dead.

:meth:`ReplicaRegistry.take_dead` hands each dead replica (lease expired, or
stopped cleanly) to exactly one live replica: one conditional ``UPDATE … SET
adopted_by`` per call, so of two replicas racing for it only one gets the id
back. The caller then adopts what that replica left: deliveries it claimed,
fires it recorded but did not start, runs it was executing.

On SQLite only one process may open the file (:func:`runner.state.db.connect`
with ``exclusive``); a registry in the process holding that lock knows any
other process's replica is gone and adopts it at once, without waiting for its
lease to run out.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    Interval,
    String,
    Table,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine

from runner.errors import ConfigError
from runner.state.db import holds_file_lock, metadata

log = logging.getLogger(__name__)

replicas = Table(
    "replicas",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True)),
    Column("adopted_by", String(200)),
    Index("ix_replicas_adoption", "adopted_by", "heartbeat_at"),
)

HEARTBEAT_SECONDS = 2.0
LEASE_SECONDS = 10.0
FORGET_AFTER = timedelta(days=1)  # adopted replicas' rows are deleted after this
_OF_THIS_PROCESS: set[str] = set()  # ids registered here (a process may hold several)
LEASE_LOST = "cannot renew its lease in the database: {reason}"
ADOPTED = ("another replica adopted its work after it missed its lease; registered again, "
           "healthy once a heartbeat renews the lease")
NO_BEAT = "no heartbeat succeeded for {seconds:.0f} s"
LEASE_TOO_SHORT = ("must be more than FLOWBOT_REPLICA_HEARTBEAT_SECONDS ({heartbeat:g}) so a "
                   "live replica beats before its lease runs out; got {lease:g}")


@dataclass(frozen=True)
class Replica:
    """One live replica as ``/healthz`` and the pages show it."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class DeadReplica:
    """A replica that stopped or whose lease ran out, and who adopted its work
    (None: no live replica has yet)."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    adopted_by: str | None


def new_replica_id() -> str:
    """A new id for this process: ``<host>-<pid>-<4 random hex>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def _reason(exc: Exception) -> str:
    """A database error in one line (the driver's message, without SQLAlchemy's
    statement and parameters)."""
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ReplicaRegistry:
    """This process's row in ``replicas``, its heartbeat, and adoption of dead replicas.

    Thread-safe: every method is one short transaction. ``lease_seconds`` must
    exceed ``heartbeat_seconds`` (a :class:`ConfigError` names the settings).
    """

    def __init__(self, engine: Engine, *, heartbeat_seconds: float = HEARTBEAT_SECONDS,
                 lease_seconds: float = LEASE_SECONDS, replica_id: str | None = None) -> None:
        if heartbeat_seconds <= 0:
            raise ConfigError("FLOWBOT_REPLICA_HEARTBEAT_SECONDS",
                              f"must be more than 0; got {heartbeat_seconds:g}")
        if lease_seconds <= heartbeat_seconds:
            raise ConfigError("FLOWBOT_REPLICA_LEASE_SECONDS", LEASE_TOO_SHORT.format(
                heartbeat=heartbeat_seconds, lease=lease_seconds))
        self._engine = engine
        self._id = replica_id or new_replica_id()
        self._heartbeat = heartbeat_seconds
        self._lease = lease_seconds
        self._sqlite = engine.dialect.name == "sqlite"
        self._guard = threading.Lock()
        self._renewed: float | None = None  # time.monotonic() of the last renewal
        self._adopted = False  # lost its lease to an adopter; no renewal since
        self._failure: str | None = None  # the last failed renewal's error

    @property
    def id(self) -> str:
        return self._id

    @property
    def heartbeat_seconds(self) -> float:
        return self._heartbeat

    def _now(self, ago: float = 0.0) -> Any:
        """The database's current time, less ``ago`` seconds, as a SQL expression."""
        if self._sqlite:
            return func.strftime("%Y-%m-%d %H:%M:%f", "now", f"-{ago:f} seconds")
        now = func.clock_timestamp()
        return now - literal(timedelta(seconds=ago), Interval()) if ago else now

    def _renewal(self, *, adopted: bool = False, failure: str | None = None) -> None:
        with self._guard:
            if adopted:
                self._adopted = True
            elif failure is not None:
                self._failure = failure
            else:
                self._renewed, self._adopted, self._failure = time.monotonic(), False, None

    def lease_problem(self) -> str | None:
        """Why this replica cannot hold its lease (``/healthz`` answers 503 with it),
        or None: its last renewal is older than the lease (the error of the last
        failed one said), or another replica adopted it and no heartbeat has renewed
        the lease since. None before the first registration."""
        with self._guard:
            renewed, adopted, failure = self._renewed, self._adopted, self._failure
        if renewed is None:
            return None  # not registered yet: no lease to hold
        if adopted:
            return LEASE_LOST.format(reason=ADOPTED)
        silent = time.monotonic() - renewed
        if silent > self._lease:
            return LEASE_LOST.format(reason=failure or NO_BEAT.format(seconds=silent))
        return None

    def register(self) -> None:
        """Record this replica as alive (again, if it was adopted or stopped)."""
        first = self._renewed is None
        try:
            self._register()
        except Exception as exc:
            self._renewal(failure=_reason(exc))
            raise
        if first:
            self._renewal()

    def _register(self) -> None:
        now = self._now()
        with self._engine.begin() as conn:
            rejoined = conn.execute(
                update(replicas).where(replicas.c.id == self._id)
                .values(heartbeat_at=now, stopped_at=None, adopted_by=None)).rowcount
            if not rejoined:
                conn.execute(insert(replicas).values(
                    id=self._id, host=socket.gethostname(), pid=os.getpid(),
                    started_at=now, heartbeat_at=now))
        _OF_THIS_PROCESS.add(self._id)
        log.info("replica registered", extra={"replica": self._id})

    def beat(self) -> bool:
        """Renew this replica's lease. False if another replica had already adopted
        it (this process stalled past its lease): it registers again, and the work
        the adopter took may be done twice, so that is logged as an error."""
        t = replicas.c
        try:
            with self._engine.begin() as conn:
                renewed = conn.execute(
                    update(replicas)
                    .where(t.id == self._id, t.adopted_by.is_(None), t.stopped_at.is_(None))
                    .values(heartbeat_at=self._now())).rowcount
        except Exception as exc:
            self._renewal(failure=_reason(exc))
            raise
        if renewed:
            self._renewal()
            return True
        self._renewal(adopted=True)
        log.error("this replica missed its lease and was adopted by another; registering "
                  "again (work it had in hand may be repeated)", extra={"replica": self._id})
        self.register()
        return False

    def _dead(self) -> Any:
        t = replicas.c
        dead = or_(t.stopped_at.is_not(None), t.heartbeat_at < self._now(self._lease))
        if self._sqlite and holds_file_lock(self._engine):
            # the SQLite file admits one process: any other process's replica is gone
            # (by id, not pid: a container's process has the same pid every start)
            dead = or_(dead, t.id.not_in(sorted(_OF_THIS_PROCESS)))
        return dead

    def take_dead(self) -> list[str]:
        """Ids of dead replicas (lease expired or stopped) that this replica won:
        each is returned by exactly one call of one live replica, ever."""
        t = replicas.c
        with self._engine.begin() as conn:
            won = conn.execute(
                update(replicas)
                .where(t.adopted_by.is_(None), t.id != self._id, self._dead())
                .values(adopted_by=self._id)
                .returning(t.id)).scalars().all()
            conn.execute(delete(replicas).where(
                t.adopted_by.is_not(None),
                t.heartbeat_at < self._now(FORGET_AFTER.total_seconds())))
        if won:
            log.warning("adopting the work of dead replicas",
                        extra={"replica": self._id, "dead": list(won)})
        return sorted(won)

    def stop(self) -> None:
        """Mark this replica stopped: another adopts what it leaves at once."""
        with self._engine.begin() as conn:
            conn.execute(update(replicas).where(replicas.c.id == self._id)
                         .values(stopped_at=self._now()))
        log.info("replica stopped", extra={"replica": self._id})

    def live(self) -> list[Replica]:
        """Replicas holding a lease now (this one included while it beats), oldest first."""
        t = replicas.c
        query = (select(replicas)
                 .where(t.stopped_at.is_(None), t.adopted_by.is_(None),
                        t.heartbeat_at >= self._now(self._lease))
                 .order_by(t.started_at, t.id))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Replica(r.id, r.host, r.pid, _utc(r.started_at), _utc(r.heartbeat_at))
                for r in rows]

    def recently_dead(self, within: timedelta = FORGET_AFTER) -> list[DeadReplica]:
        """Replicas dead now (stopped, or lease expired) that were last heard of
        within ``within``, newest first, each with its adopter."""
        t = replicas.c
        query = (select(replicas)
                 .where(or_(t.stopped_at.is_not(None), t.adopted_by.is_not(None),
                            t.heartbeat_at < self._now(self._lease)),
                        t.heartbeat_at >= self._now(within.total_seconds()))
                 .order_by(t.heartbeat_at.desc(), t.id))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [DeadReplica(r.id, r.host, r.pid, _utc(r.started_at), _utc(r.heartbeat_at),
                            None if r.stopped_at is None else _utc(r.stopped_at), r.adopted_by)
                for r in rows]

    def database_now(self) -> datetime:
        """The database's clock, which judges liveness (pages measure heartbeats by it)."""
        with self._engine.connect() as conn:
            now = conn.execute(select(self._now())).scalar_one()
        if isinstance(now, str):  # SQLite's strftime
            now = datetime.fromisoformat(now)
        return _utc(now)

    def alone(self) -> bool:
        """True when no live replica but this one holds a lease (work claimed before
        replicas had ids then belongs to no one else)."""
        return all(replica.id == self._id for replica in self.live())
