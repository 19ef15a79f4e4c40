"""The reply and refusal records behind one-reply-per-comment, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from bot.handlers.command_replies import CommandReplies, Part, reply_body

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def test_a_refusal_is_allowed_once_per_user_and_issue_per_window(db_engine: Engine) -> None:
    replies = CommandReplies(db_engine)
    assert replies.claim_refusal("o/r", 7, "mallory", NOW, WINDOW)
    assert not replies.claim_refusal("o/r", 7, "mallory", NOW + timedelta(minutes=9), WINDOW)
    assert replies.claim_refusal("o/r", 8, "mallory", NOW, WINDOW)  # another issue
    assert replies.claim_refusal("o/r", 7, "eve", NOW, WINDOW)  # another user
    assert replies.claim_refusal("o/r", 7, "mallory", NOW + WINDOW, WINDOW)
    assert not replies.claim_refusal("o/r", 7, "mallory", NOW + WINDOW, WINDOW)


def test_a_run_section_is_swapped_in_and_the_rest_kept(db_engine: Engine) -> None:
    replies = CommandReplies(db_engine)
    assert replies.begin("o/r#1", "o/r", 7) == (False, None)
    assert replies.begin("o/r#1", "o/r", 7) == (True, None)  # begun, reply not yet recorded
    parts = [Part("paused"), Part("run a: queued", "a"), Part("run b: queued", "b")]
    replies.save("o/r#1", "o/r", 7, 42, parts)
    assert replies.begin("o/r#1", "o/r", 7) == (True, 42)
    found = replies.set_section(42, "b", "run b: success")
    assert found == ("o/r#1", [Part("paused"), Part("run a: queued", "a"),
                               Part("run b: success", "b")], True)
    assert replies.set_section(42, "b", "run b: success") == (*found[:2], False)
    assert replies.set_section(43, "b", "x") is None  # not a command reply
    body = reply_body(found[1], found[0])
    assert body.index("paused") < body.index("run a") < body.index("run b: success")
    assert body.rstrip().endswith("<!-- flowbot:reply:o/r#1 -->")
