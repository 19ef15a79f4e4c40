"""A run's comment edits: never the same body twice, paced while running, the end at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from bot.handlers.edit_pacing import EditPacer
from tests.clock import FakeClock
from tests.polling import wait_until

KEY = (101, "run-1")


@contextmanager
def _no_lock(run_id: str) -> Iterator[None]:
    yield


Sent = list[tuple[datetime, str]]


def _pacer(clock: FakeClock) -> tuple[EditPacer, Sent, Callable[[str], None]]:
    """A pacer of 5 s, what it sent (when, body) and the send it is given."""
    sent: Sent = []
    return EditPacer(clock, 5.0, _no_lock, poll=0.05), sent, \
        lambda body: sent.append((clock.now(), body))


def test_the_same_body_is_never_sent_twice() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    pacer, sent, send = _pacer(clock)

    assert pacer.offer(KEY, "queued", send, final=False)
    clock.advance(60)
    assert not pacer.offer(KEY, "queued", send, final=False)
    assert pacer.offer(KEY, "done", send, final=True)
    assert not pacer.offer(KEY, "done", send, final=True)  # a repeated final event
    assert [body for _, body in sent] == ["queued", "done"]


def test_running_edits_are_paced_and_the_latest_goes_out_when_due() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    pacer, sent, send = _pacer(clock)

    pacer.offer(KEY, "step 0", send, final=False)
    for step in range(1, 10):  # a burst of events within one interval
        clock.advance(0.3)
        pacer.offer(KEY, f"step {step}", send, final=False)
    assert [body for _, body in sent] == ["step 0"] and pacer.pending() == 1
    clock.advance(5)
    pacer.wake()
    wait_until(lambda: len(sent) == 2, 10, "the pending edit to be flushed")
    assert sent[1][1] == "step 9"  # only the newest of the burst
    assert (sent[1][0] - sent[0][0]).total_seconds() >= 5
    assert pacer.pending() == 0


def test_the_final_body_goes_out_at_once_and_drops_the_pending_one() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    pacer, sent, send = _pacer(clock)

    pacer.offer(KEY, "running", send, final=False)
    clock.advance(1)
    pacer.offer(KEY, "running 2", send, final=False)
    assert pacer.offer(KEY, "success", send, final=True)
    clock.advance(10)
    pacer.wake()
    assert pacer.flush() == 0  # nothing stale follows the end
    assert [body for _, body in sent] == ["running", "success"]
