"""flowbot's one reply to a comment holding commands, and the refusal rate limit.

Every comment gets at most one reply, holding the answers to all its commands
in order. A ``/run`` answer is the run's own report section, which
:func:`edit_reply` swaps in as the run progresses; the other sections are kept
as posted. The reply is keyed by the comment, so a replayed delivery edits the
reply it already posted instead of posting a second one.

Refusals to people without write access are rate-limited per (user, issue):
:meth:`CommandReplies.claim_refusal` says whether one may be posted now. Both
tables are created by the ``commands`` migration branch
(``runner/state/migrations/versions/commands_0001_initial.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.github.interfaces import RepoClient
from runner.state.db import metadata

command_replies = Table(
    "command_replies", metadata,
    Column("comment_key", String(300), primary_key=True),  # "<repo>#<comment id>"
    Column("repo", String(255), nullable=False),
    Column("issue_number", Integer, nullable=False),
    Column("reply_id", BigInteger),  # NULL until the reply is posted
    Column("parts_json", Text, nullable=False),
    Index("ux_command_replies_reply", "reply_id", unique=True),
)

command_refusals = Table(
    "command_refusals", metadata,
    Column("repo", String(255), primary_key=True),
    Column("issue_number", Integer, primary_key=True),
    Column("login", String(255), primary_key=True),
    Column("last_at", DateTime(timezone=True), nullable=False),
)

REPLY_MARKER = "<!-- flowbot:reply:{key} -->"  # finds a reply posted just before a crash
SEPARATOR = "\n\n---\n\n"


@dataclass(frozen=True)
class Part:
    """One answer in a reply; ``run_id`` marks a run's report section."""

    text: str
    run_id: str | None = None


def reply_body(parts: Sequence[Part], key: str) -> str:
    """The reply comment: every answer in order, then flowbot's marker."""
    marker = REPLY_MARKER.format(key=key)
    return SEPARATOR.join(p.text.rstrip() for p in parts) + "\n\n" + marker + "\n"


def comment_key(repo: str, comment_id: int) -> str:
    return f"{repo}#{comment_id}"


def _dump(parts: Sequence[Part]) -> str:
    return json.dumps([{"text": p.text, "run_id": p.run_id} for p in parts])


def _load(text: str) -> list[Part]:
    return [Part(str(p["text"]), p.get("run_id")) for p in json.loads(text)]


class CommandReplies:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self, key: str, repo: str, issue_number: int) -> tuple[bool, int | None]:
        """Note that comment ``key`` is being answered, before anything is posted.
        Returns whether it was answered (or begun) before, and the reply's id if known:
        ``(True, None)`` means a reply may have been posted just before a crash."""
        t = command_replies.c
        with self._engine.connect() as conn:
            row = conn.execute(select(t.reply_id).where(t.comment_key == key)).first()
        if row is not None:
            return True, None if row.reply_id is None else int(row.reply_id)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(command_replies).values(
                    comment_key=key, repo=repo, issue_number=issue_number, parts_json="[]"))
        except IntegrityError:
            return True, None  # a racing delivery of the same comment began first
        return False, None

    def save(self, key: str, repo: str, issue_number: int, reply_id: int,
             parts: Sequence[Part]) -> None:
        """Record the reply posted (or edited) for comment ``key``."""
        t = command_replies.c
        values = {"repo": repo, "issue_number": issue_number, "reply_id": reply_id,
                  "parts_json": _dump(parts)}
        with self._engine.begin() as conn:
            changed = conn.execute(update(command_replies).where(t.comment_key == key)
                                   .values(**values)).rowcount
            if not changed:
                conn.execute(insert(command_replies).values(comment_key=key, **values))

    def set_section(self, reply_id: int, run_id: str,
                    text: str) -> tuple[str, list[Part], bool] | None:
        """Swap in run ``run_id``'s new section; the reply's comment key, parts and
        whether the section changed, or None if ``reply_id`` is not a command reply
        (a report comment of its own)."""
        t = command_replies.c
        with self._engine.begin() as conn:
            row = conn.execute(select(t.comment_key, t.parts_json)
                               .where(t.reply_id == reply_id)).first()
            if row is None:
                return None  # not a reply this module posted
            old = _load(row.parts_json)
            parts = [Part(text, run_id) if p.run_id == run_id else p for p in old]
            if parts == old:
                return str(row.comment_key), parts, False  # nothing new to show
            conn.execute(update(command_replies).where(t.comment_key == row.comment_key)
                         .values(parts_json=_dump(parts)))
        return str(row.comment_key), parts, True

    def claim_refusal(self, repo: str, issue_number: int, login: str, now: datetime,
                      window: timedelta) -> bool:
        """True if a refusal to ``login`` on this issue may be posted now (and records
        it); False if one was posted less than ``window`` ago."""
        t = command_refusals.c
        key = (t.repo == repo, t.issue_number == issue_number, t.login == login)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(command_refusals).values(
                    repo=repo, issue_number=issue_number, login=login, last_at=now))
            return True
        except IntegrityError:
            pass  # refused before: allowed again only once the window has passed
        with self._engine.begin() as conn:
            changed = conn.execute(update(command_refusals)
                                   .where(*key, t.last_at <= now - window)
                                   .values(last_at=now)).rowcount
        return bool(changed)


_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(reply_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(reply_id, threading.Lock())


def edit_reply(engine: Engine, client: RepoClient, comment_id: int, run_id: str,
               section: str) -> None:
    """Show run ``run_id``'s new report ``section`` in comment ``comment_id``: within
    the whole reply when it is a command reply, else as the comment's body."""
    with _lock(comment_id):  # sections of one reply are swapped in one at a time
        found = CommandReplies(engine).set_section(comment_id, run_id, section)
        if found is None:
            client.edit_comment(comment_id, section)  # a run's own report comment
        elif found[2]:
            client.edit_comment(comment_id, reply_body(found[1], found[0]))
        # else: the reply already shows this section; spare GitHub a paced write
