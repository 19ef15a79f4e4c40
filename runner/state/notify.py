"""Wake-ups across replicas: PostgreSQL ``LISTEN``/``NOTIFY``.

A replica that creates or frees work another replica acts on (a queued run, a
freed concurrency slot, a cancel request, a recorded delivery, a registry sync
or a paused/resumed schedule) sends a notification on a channel; every replica's
:class:`Notifier` listens on a dedicated psycopg connection and calls the
callbacks registered for that channel, which only wake a waiting thread. The
polls those threads already do stay as the fallback: a notification is a hint,
never the record (the rows are), so one lost while the listener reconnects
costs at most a poll interval; after every (re)connect each callback is called
once with an empty payload, since notifications sent meanwhile are gone.

:func:`notify_in` sends inside the writing transaction (PostgreSQL delivers it
at commit, never for a rollback); :meth:`Notifier.notify` sends after it, in a
transaction of its own, and never raises: the work is recorded already.
SQLite serves one process, whose in-memory wake-ups are the whole story:
everything here is a no-op there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

RUNS = "flowbot_runs"  # a run was queued or ended (a concurrency slot freed)
CANCELS = "flowbot_cancels"  # a cancel was requested; payload: the run id
DELIVERIES = "flowbot_deliveries"  # a webhook delivery was recorded
SCHEDULES = "flowbot_schedules"  # the registry synced, or a flow was paused or resumed

Callback = Callable[[str], None]  # called with the notification's payload

_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")
_WAIT = 0.5  # seconds the listener blocks before it looks at stop() and new channels
_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 5.0  # seconds between reconnects, doubling


def shared(engine: Engine) -> bool:
    """True when replicas may share ``engine``'s database (PostgreSQL)."""
    return engine.dialect.name == "postgresql"


def notify_in(conn: Connection, channel: str, payload: str = "") -> None:
    """Notify ``channel`` when ``conn``'s transaction commits (SQLite: nothing)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": channel, "payload": payload})


class Notifier:
    """Sends and hears notifications among the replicas on ``engine``'s database."""

    def __init__(self, engine: Engine, *, backoff_first: float = _BACKOFF_FIRST,
                 backoff_max: float = _BACKOFF_MAX,
                 connected: Callable[[bool], None] | None = None) -> None:
        """``connected(True)`` once the listener listens, ``connected(False)`` when it
        loses the connection (or stops): what ``/metrics`` shows."""
        self.engine = engine
        self._connected = connected
        self.shared = shared(engine)
        self._backoff = (backoff_first, backoff_max)
        self._callbacks: dict[str, list[Callback]] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.connections = 0  # listener connections made so far (1 + reconnects)

    def notify(self, channel: str, payload: str = "") -> None:
        """Notify ``channel`` now, in a transaction of its own. A failure is logged,
        not raised: the replicas' polls pick the work up anyway."""
        if not self.shared:
            return  # one process: its own wake-ups already happened
        try:
            with self.engine.begin() as conn:
                notify_in(conn, channel, payload)
        except Exception as exc:
            log.warning("cannot notify the other replicas; they find the work by polling",
                        extra={"channel": channel, "reason": str(getattr(exc, "orig", exc))})

    def on(self, channel: str, callback: Callback) -> None:
        """Call ``callback(payload)`` on the listener thread for each notification on
        ``channel`` (also once with "" after each connect). It must only wake
        something: the listener waits for it."""
        with self._guard:
            self._callbacks.setdefault(channel, []).append(callback)

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (None while disconnected)."""
        return self._pid

    def start(self) -> None:
        """Start listening (SQLite: nothing to hear)."""
        if not self.shared or self._thread is not None:
            return  # nothing to listen to, or listening already
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="flowbot-notify",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # --- the listener thread -------------------------------------------------
    def _listen(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    delay = self._backoff[0]  # connected: the next outage starts afresh
                    self._serve(conn)
            except psycopg.Error as exc:
                log.warning("notification listener lost the database; reconnecting",
                            extra={"reason": str(exc).strip(), "retry_in": delay})
            finally:
                self._pid = None
                self._tell(False)
            if self._stop.wait(delay):
                return  # stop() while the database was away
            delay = min(delay * 2, self._backoff[1])

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        url = self.engine.url.set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True,
                               connect_timeout=5, keepalives=1, keepalives_idle=10,
                               keepalives_interval=5, keepalives_count=3)  # a silent drop too
        self.connections += 1
        return conn

    def _serve(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """LISTEN on every channel, tell every callback to look (notifications sent
        while disconnected are lost), then hand notifications over until stop()."""
        listening: set[str] = set()
        self._listen_new(conn, listening)
        self._pid = conn.info.backend_pid
        self._tell(True)
        for channel in listening:
            self._call(channel, "")
        while not self._stop.is_set():
            for note in conn.notifies(timeout=_WAIT):
                self._call(note.channel, note.payload)
            for channel in self._listen_new(conn, listening):
                self._call(channel, "")  # registered while listening: look once

    def _tell(self, connected: bool) -> None:
        if self._connected is not None:
            try:
                self._connected(connected)
            except Exception:  # an observer's bug must not stop the listener
                log.exception("notification listener observer failed")

    def _listen_new(self, conn: psycopg.Connection[tuple[object, ...]],
                    listening: set[str]) -> list[str]:
        with self._guard:
            new = [channel for channel in self._callbacks if channel not in listening]
        for channel in new:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            listening.add(channel)
        return new

    def _call(self, channel: str, payload: str) -> None:
        with self._guard:
            callbacks = list(self._callbacks.get(channel, ()))
        for callback in callbacks:
            try:
                callback(payload)
            except Exception:  # one callback's bug must not stop the listener
                log.exception("notification callback failed", extra={"channel": channel})


class SharedWake(threading.Event):
    """A wake-up event set in every replica: :meth:`set` here also notifies
    ``channel``, and a notification on it sets this event (only) locally."""

    def __init__(self, notifier: Notifier, channel: str) -> None:
        super().__init__()
        self._notifier, self._channel = notifier, channel
        notifier.on(channel, lambda _payload: self.set_here())

    def set(self) -> None:
        self.set_here()
        self._notifier.notify(self._channel)

    def set_here(self) -> None:
        """Set the event in this process only (what a notification does)."""
        super().set()
