"""A run page and its live log served by a replica that is not running the task:
the log lives where every replica reads it (the database on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest

from runner.state.records import Status
from tests.bot.replica_kit import Replicas, replica_db, replicas  # noqa: F401  (fixtures)
from tests.bot.serve_kit import WAIT_SECONDS
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.replicas]

TICKER = """id: ticker
tasks:
  - id: tick
    image: busybox:latest
    network: none
    commands: ['for i in 1 2 3 4 5 6 7 8 9 10; do echo tick-$i; sleep 1; done']
"""


class Listener:
    """Reads a server-sent event stream in a thread, keeping all text received."""

    def __init__(self, url: str) -> None:
        self.received: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()

    def _read(self, url: str) -> None:
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=WAIT_SECONDS)) as answer:
            for text in answer.iter_text():
                self.received.append(text)

    def text(self) -> str:
        return "".join(self.received)

    def join(self) -> None:
        self._thread.join(WAIT_SECONDS)


def test_a_replica_not_running_the_task_serves_its_page_and_live_log(
    replicas: Callable[..., Replicas]  # noqa: F811
) -> None:
    group = replicas()
    group.sync({"flows/ticker.yml": TICKER})
    group.comment(0, "/run ticker")
    run_id = group.first_run("ticker")
    other = group[(group.running_on(run_id) + 1) % len(group)]

    live = Listener(f"{other.url}/runs/{run_id}/live")
    wait_until(lambda: "tick-2" in live.text(), WAIT_SECONDS, "the live log on another replica",
               interval=0.1)
    assert group.store.get_run(run_id).status is Status.RUNNING  # type: ignore[union-attr]
    page = httpx.get(f"{other.url}/runs/{run_id}", timeout=5)
    assert page.status_code == 200 and run_id in page.text and "tick-1" in page.text
    wait_until(lambda: "tick-10" in live.text(), WAIT_SECONDS, "the rest of the live log",
               interval=0.1)
    assert group.ended(run_id).status is Status.SUCCESS
    live.join()  # the stream ends with the run
    text = live.text()
    assert [text.index(f"tick-{i}") for i in range(1, 11)] == sorted(
        text.index(f"tick-{i}") for i in range(1, 11))  # in order, none missing
