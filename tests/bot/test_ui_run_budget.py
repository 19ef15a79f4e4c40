"""FLOWBOT_RUNS_PER_USER_PER_HOUR on the web: the flow page's Run form and a run
page's Re-run start no run once the viewer started that many runs of the repository
in the last hour, and say so inline; runs of other users and scheduled runs are not
counted, and the budget frees up as the hour passes. Real app, real database, the
fake GitHub over HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from runner.state.records import Trigger, TriggerType
from tests.bot.test_ui_flow import _client, _csrf
from tests.bot.ui_kit import MINE, USER
from tests.clock import FakeClock
from tests.fakegithub.server import FakeGitHub


def _text(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#34;", '"')


def test_the_run_form_and_rerun_obey_the_per_user_budget(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    client, svc, runs = _client(sqlite_engine, tmp_path, fake_github)
    svc.settings = replace(svc.settings, runs_per_user_per_hour=2)
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    registered = svc.registry.get(MINE, "deploy")
    assert registered is not None
    for trigger in (Trigger(TriggerType.MANUAL, "bo"), Trigger(TriggerType.SCHEDULE, USER)):
        svc.store.create_run(registered.flow, repo=MINE, commit=None, trigger=trigger,
                             inputs={"count": 1})
    page = f"/flows/{MINE}/deploy"
    for _ in range(2):
        started = client.post(f"{page}/run", data={"csrf": _csrf(client.get(page).text),
                                                     "count": "3"})
        assert started.status_code == 303, started.text
        clock.advance(60)
    first = svc.store.get_run(runs.submitted[0]["run_id"])
    assert first is not None
    free_at = first.created_at + timedelta(hours=1)
    message = (f"@{USER} has started 2 runs of {MINE} in the last hour "
               f"(FLOWBOT_RUNS_PER_USER_PER_HOUR); try again after {free_at:%H:%M} UTC or "
               f"ask an operator to raise it")
    refused = client.post(f"{page}/run", data={"csrf": _csrf(client.get(page).text),
                                                 "count": "3"})
    assert refused.status_code == 429
    assert message in _text(refused.text)
    assert 'value="3"' in refused.text  # the form keeps what was typed
    run_page = client.get(f"/runs/{first.id}").text
    again = client.post(f"/runs/{first.id}/rerun", data={"csrf": _csrf(run_page)})
    assert again.status_code == 429
    assert message in _text(again.text)
    assert len(runs.submitted) == 2  # nothing started

    clock.advance(3600 - 120)  # the first run is an hour old: one more may start
    again = client.post(f"/runs/{first.id}/rerun",
                        data={"csrf": _csrf(client.get(f"/runs/{first.id}").text)})
    assert again.status_code == 303, again.text
    assert len(runs.submitted) == 3

    svc.settings = replace(svc.settings, runs_per_user_per_hour=0)  # 0: no cap
    for _ in range(3):
        started = client.post(f"{page}/run", data={"csrf": _csrf(client.get(page).text),
                                                     "count": "3"})
        assert started.status_code == 303, started.text
    assert len(runs.submitted) == 6
