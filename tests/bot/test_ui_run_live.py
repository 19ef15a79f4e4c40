"""The run page's live stream and its Cancel / Re-run buttons, over the real app,
a real database and real log files (the browser tests watch a real Docker task)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.services import Services
from bot.web.actions import CSRF_FIELD
from runner.state.records import Status
from runner.validation.validate import validate_files
from tests.bot.ui_kit import MINE, add_run, arrange_github, running_run, ui_app, ui_services
from tests.fakegithub.server import FakeGitHub
from tests.fakes import FakeRuns, TestClient

LOG = "compiling\nünïcode ✓\ndone\n"


def _events(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body: event, id and data (data lines joined)."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            if field == "data":
                event["data"] = event["data"] + "\n" + value if "data" in event else value
            elif field in ("event", "id"):
                event[field] = value
        if "event" in event:
            found.append(event)
    return found


@pytest.fixture
def local(sqlite_engine: Engine, tmp_path: Path) -> tuple[Services, TestClient]:
    """Without GitHub sign-in: this machine reads and writes."""
    svc = ui_services(sqlite_engine, tmp_path, None)
    return svc, TestClient(ui_app(svc), follow_redirects=False)


DAILY = b"""id: daily
inputs:
  day: {type: string, default: mon}
tasks:
  - {id: build, image: "busybox:latest", commands: [echo hi]}
"""


def _running(svc: Services) -> str:
    """A run of ``daily`` whose task is running, its log written so far."""
    svc.registry.sync(MINE, "b" * 40, validate_files({"flows/daily.yml": DAILY}).flows)
    return running_run(svc, flow_id="daily", log="first\n", commit="b" * 40,
                       inputs={"day": "tue"})


def test_a_finished_runs_stream_sends_state_log_and_end(
        local: tuple[Services, TestClient]) -> None:
    svc, client = local
    run_id = add_run(svc, Status.FAILED, log=LOG)
    answer = client.get(f"/runs/{run_id}/live")
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = _events(answer.text)
    assert [e["event"] for e in events] == ["state", "timeline", "log", "end"]
    assert 'id="run-status">failed' in events[0]["data"]
    assert events[1]["data"].startswith('<div id="run-timeline">')
    assert 'class="gantt-running st-failed" data-task="build"' in events[1]["data"]
    log = json.loads(events[2]["data"])
    assert (log["task"], log["attempt"], log["text"]) == ("build", 1, LOG)
    assert events[2]["id"] == f"build=1%3A{len(LOG.encode())}"


def test_a_reconnect_resumes_at_its_last_event_id(local: tuple[Services, TestClient]) -> None:
    svc, client = local
    run_id = add_run(svc, Status.SUCCESS, log=LOG)
    offset = len("compiling\n")
    resumed = _events(client.get(f"/runs/{run_id}/live",
                                 headers={"Last-Event-ID": f"build=1:{offset}"}).text)
    assert json.loads(resumed[2]["data"])["text"] == LOG[offset:]
    done = _events(client.get(f"/runs/{run_id}/live",
                              params={"from": f"build=1:{len(LOG.encode())}"}).text)
    assert [e["event"] for e in done] == ["state", "timeline", "end"]  # no log left to send


def test_a_running_run_page_goes_live_and_still_works_without_js(
        local: tuple[Services, TestClient]) -> None:
    svc, client = local
    run_id = _running(svc)
    page = client.get(f"/runs/{run_id}").text
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page
    assert f'data-live="/runs/{run_id}/live?from=build%3D1%253A6"' in page
    assert '<pre class="log">first\n</pre>' in page
    assert client.get("/static/run-live.js").status_code == 200


def test_this_machine_cancels_and_reruns_with_the_form_token(
        local: tuple[Services, TestClient]) -> None:
    svc, client = local
    run_id = _running(svc)
    page = client.get(f"/runs/{run_id}").text
    assert 'id="cancel-run"' in page and 'id="rerun-run"' in page
    token = page.split('name="csrf" value="')[1].split('"')[0]
    runs = svc.runs
    assert isinstance(runs, FakeRuns)
    assert client.post(f"/runs/{run_id}/cancel", data={}).status_code == 403
    assert runs.cancelled == []
    done = client.post(f"/runs/{run_id}/cancel", data={CSRF_FIELD: token})
    assert (done.status_code, done.headers["location"]) == (303, f"/runs/{run_id}")
    assert runs.cancelled == [run_id]
    again = client.post(f"/runs/{run_id}/rerun", data={CSRF_FIELD: token})
    assert again.status_code == 303
    [submitted] = runs.submitted
    assert again.headers["location"] == f"/runs/{submitted['run_id']}"
    assert (submitted["flow"], submitted["commit"], submitted["inputs"]) == (
        "daily", "b" * 40, {"day": "tue"})
    assert submitted["trigger"].actor == "this machine"


def test_a_reader_sees_no_buttons_and_forged_posts_get_403(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    arrange_github(fake_github)  # ana only reads acme/flows
    svc = ui_services(sqlite_engine, tmp_path, fake_github)
    run_id = _running(svc)
    client = TestClient(ui_app(svc), follow_redirects=False)
    from tests.bot.test_ui_actions import _sign_in

    _sign_in(client)
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "first" in page.text
    assert "cancel-run" not in page.text and "rerun-run" not in page.text
    assert 'name="csrf"' not in page.text
    for action in ("cancel", "rerun"):
        forged = client.post(f"/runs/{run_id}/{action}", data={CSRF_FIELD: "forged"})
        assert forged.status_code == 403
    runs = svc.runs
    assert isinstance(runs, FakeRuns)
    assert runs.cancelled == [] and runs.submitted == []
    assert svc.store.get_run(run_id).status is Status.RUNNING  # type: ignore[union-attr]
