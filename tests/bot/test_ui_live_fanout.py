"""Many viewers of one running run over real HTTP: ONE poller reads the store and the
log once per tick for all of them, every viewer gets every line exactly once (one
resuming from behind catches up on its own), and the poller is gone after the last
viewer leaves."""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from bot.web.live import LiveHub, RunPoller
from runner.running.logstore import log_path
from runner.state.records import Status
from tests.bot.ui_kit import free_port, running_run, served, ui_app, ui_services
from tests.fakes import FakeRuns
from tests.polling import wait_until

VIEWERS = 50
FIRST = "compiling\n"
LINES = [f"step {n} ✓\n" for n in range(1, 6)]


def _watch(url: str, headers: dict[str, str], got: list[str], ended: list[bool]) -> None:
    """One SSE client: the log text it receives, until ``end``."""
    event = ""
    with httpx.stream("GET", url, headers=headers, timeout=60) as answer:
        for line in answer.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "log":
                got.append(json.loads(line.removeprefix("data: "))["text"])
            elif event == "end":
                ended.append(True)
                return


def _read_to(poller: RunPoller, end: int) -> bool:
    return poller.cursor.get("build") == (1, end)


def test_fifty_viewers_share_one_poller_and_each_gets_every_line(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    svc = ui_services(sqlite_engine, tmp_path, None)
    run_id = running_run(svc, log=FIRST)
    log = log_path(svc.settings.data_dir, run_id, "build", 1)
    app = ui_app(svc)
    with served(app, free_port()) as base:
        url = f"{base}/runs/{run_id}/live"
        page_cursor = {"Last-Event-ID": f"build=1:{len(FIRST)}"}  # what the page showed
        behind = {"Last-Event-ID": "build=1:0"}  # a reconnect from the very start
        received: list[list[str]] = [[] for _ in range(VIEWERS + 1)]
        ended: list[bool] = []
        clients = [threading.Thread(target=_watch, args=(
            url, page_cursor if n < VIEWERS else behind, received[n], ended), daemon=True)
            for n in range(VIEWERS + 1)]

        def poller(watchers: int) -> RunPoller | None:
            hub = getattr(app.state, "live_hub", None)
            found = hub.poller(run_id) if isinstance(hub, LiveHub) else None
            return found if found is not None and len(found.watchers) == watchers else None

        for client in clients[:VIEWERS]:
            client.start()
        shared = wait_until(lambda: poller(VIEWERS), 30, f"{VIEWERS} viewers on one poller")
        assert shared is not None
        clients[VIEWERS].start()  # the one behind joins the stream already running
        assert wait_until(lambda: poller(VIEWERS + 1), 30, "the viewer behind") is shared
        written = len(FIRST.encode())
        for line in LINES:  # each line in its own tick: the shared cursor passes it first
            with log.open("ab") as f:
                f.write(line.encode())
            written += len(line.encode())
            wait_until(partial(_read_to, shared, written), 30, f"the poller to read {line!r}")
        svc.store.finish_attempt(run_id, "build", 1, Status.SUCCESS, exit_code=0)
        runs = svc.runs
        assert isinstance(runs, FakeRuns)
        runs.finish(run_id, Status.SUCCESS)
        for client in clients:
            client.join(timeout=60)
        assert len(ended) == VIEWERS + 1, "every viewer got the end of the run"
        for got in received[:VIEWERS]:
            assert "".join(got) == "".join(LINES)
        assert "".join(received[VIEWERS]) == FIRST + "".join(LINES)
        # read once per tick, not once per viewer: 51 viewers, one store read and one
        # log read a tick, and the one viewer behind caught up with its own read once
        assert shared.ticks >= len(LINES)
        assert shared.store_reads == shared.ticks
        assert shared.log_reads == shared.ticks
        assert shared.catchup_reads == 1
        hub = app.state.live_hub
        wait_until(lambda: hub.poller(run_id) is None, 30, "the poller to go with its viewers")


def _no_poller(hub: LiveHub, run_id: str) -> bool:
    return hub.poller(run_id) is None


def test_viewers_leaving_mid_run_take_the_poller_with_them(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    svc = ui_services(sqlite_engine, tmp_path, None)
    run_id = running_run(svc, log=FIRST)
    app = ui_app(svc)
    with served(app, free_port()) as base:
        for _ in range(2):  # the second viewer gets a poller of its own again
            with httpx.stream("GET", f"{base}/runs/{run_id}/live", timeout=30) as answer:
                lines = answer.iter_lines()
                assert next(line for line in lines if line.startswith("event: ")) \
                    == "event: state"
                hub = app.state.live_hub
                assert isinstance(hub, LiveHub) and hub.poller(run_id) is not None
            wait_until(partial(_no_poller, hub, run_id), 30,
                       "the poller to stop once its only viewer left")
