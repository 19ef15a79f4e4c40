"""Signed-in web sessions, kept in the database so any replica serves them.

The session cookie (signed, HttpOnly) holds only a random session id. Its row —
keyed by the id's SHA-256, so the table alone opens no session — holds the GitHub
login, the repositories the user reads and when that was checked, the user's GitHub
token encrypted at rest (Fernet, with a key derived from ``FLOWBOT_SESSION_SECRET``),
and when the session expires. An expired row answers nothing and is deleted; signing
out deletes the row, on every replica at once. A token that no longer decrypts (the
secret changed) ends its session: the user signs in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Column, DateTime, String, Table, Text, delete, insert, select, update
from sqlalchemy.engine import Engine

from runner.state.db import metadata

_TS = DateTime(timezone=True)
_KEY_LABEL = b"flowbot web session tokens v1"

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("login", String(100), nullable=False),
    Column("token", Text, nullable=False),  # the user's GitHub token, Fernet-encrypted
    Column("repos", Text, nullable=False),  # JSON list of readable repositories
    Column("checked_at", _TS, nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("expires_at", _TS, nullable=False, index=True),
)


@dataclass(frozen=True)
class WebSession:
    """A signed-in user's session as stored."""

    login: str
    token: str
    repos: frozenset[str]
    checked_at: datetime
    expires_at: datetime


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive times: they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def token_cipher(secret: str) -> Fernet:
    """The Fernet of the users' tokens: its key derived from the session secret
    (an HMAC with a fixed label, so the key is never the cookie's signing key)."""
    key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class SessionStore:
    """The ``web_sessions`` table. Times are given (``now``): the caller's clock."""

    def __init__(self, engine: Engine, secret: str, max_age_seconds: int) -> None:
        self._engine = engine
        self._cipher = token_cipher(secret)
        self._max_age = timedelta(seconds=max_age_seconds)

    def create(self, login: str, token: str, repos: frozenset[str], now: datetime) -> str:
        """A new session; its id (for the cookie, never stored as it is)."""
        session_id = secrets.token_urlsafe(32)
        row = {"id_hash": _id_hash(session_id), "login": login,
               "token": self._cipher.encrypt(token.encode()).decode(),
               "repos": json.dumps(sorted(repos)), "checked_at": now, "created_at": now,
               "expires_at": now + self._max_age}
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
            conn.execute(insert(web_sessions).values(**row))
        return session_id

    def get(self, session_id: str, now: datetime) -> WebSession | None:
        """The live session of ``session_id``; None (and an expired one deleted)."""
        key = _id_hash(session_id)
        with self._engine.connect() as conn:
            row = conn.execute(select(web_sessions).where(web_sessions.c.id_hash == key)).first()
        if row is None:
            return None  # never was, signed out, or expired and removed
        expires_at = _utc(row.expires_at)
        try:
            token = self._cipher.decrypt(row.token.encode()).decode()
        except InvalidToken:
            token = None  # encrypted under another secret: sign in again
        if expires_at <= now or token is None:
            self.delete(session_id)
            return None
        return WebSession(row.login, token, frozenset(json.loads(row.repos)),
                          _utc(row.checked_at), expires_at)

    def rechecked(self, session_id: str, repos: frozenset[str], now: datetime) -> None:
        """Record the user's readable repositories as checked ``now``."""
        with self._engine.begin() as conn:
            conn.execute(update(web_sessions)
                         .where(web_sessions.c.id_hash == _id_hash(session_id))
                         .values(repos=json.dumps(sorted(repos)), checked_at=now))

    def delete(self, session_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions)
                         .where(web_sessions.c.id_hash == _id_hash(session_id)))
