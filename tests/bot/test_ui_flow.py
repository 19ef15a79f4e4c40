"""The flow page over the real app, a real database and the fake GitHub over HTTP:
what it shows (source links, task graph, triggers with DST notes, paged runs), who
sees it, the Run form's inline errors and runs started from it (file uploads
included), Pause/Resume, and forged or read-only writes refused."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.services import Services
from runner.state.records import Status, TriggerType
from tests.bot.ui_flow_kit import DEPLOY_SHA, StagingRuns, flow_services
from tests.bot.ui_kit import MINE, NOT_MINE, USER, add_run
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient

PAGE = f"/flows/{MINE}/deploy"


def _sign_in(client: TestClient) -> None:
    to_github = client.get("/login/github")
    back = httpx.get(to_github.headers["location"], follow_redirects=False)
    target = urlsplit(back.headers["location"])
    assert "code" in parse_qs(target.query)
    assert client.get(f"{target.path}?{target.query}").status_code == 303


def _client(engine: Engine, tmp_path: Path, fake: FakeGitHub,
            permission: str = "write") -> tuple[TestClient, Services, StagingRuns]:
    svc, runs = flow_services(engine, tmp_path, fake, permission)
    client = TestClient(create_app(svc.settings, svc), follow_redirects=False)
    _sign_in(client)
    return client, svc, runs


@pytest.fixture
def writer(sqlite_engine: Engine, tmp_path: Path,
           fake_github: FakeGitHub) -> tuple[TestClient, Services, StagingRuns]:
    return _client(sqlite_engine, tmp_path, fake_github)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def test_the_page_shows_source_graph_triggers_and_dst_notes(writer: tuple) -> None:
    client, svc, _ = writer
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.text
    assert "Ship the site to a target" in html
    web = svc.settings.github_web_url
    assert f'href="{web}/{MINE}/blob/{DEPLOY_SHA}/flows/deploy.yml"' in html
    assert f'href="{web}/{MINE}/commit/{DEPLOY_SHA}"' in html
    svg = html.split('<svg class="dag"', 1)[1].split("</svg>", 1)[0]
    assert svg.count('class="dag-node"') == 4
    edges = set(re.findall(r'data-from="(\w+)" data-to="(\w+)"', svg))
    assert edges == {("build", "test"), ("test", "ship"), ("lint", "ship")}
    xs = {task: int(x) for task, x in re.findall(r'data-task="(\w+)"><title>\w+</title>'
                                                 r'<rect x="(\d+)"', svg)}
    assert xs["build"] == xs["lint"] < xs["test"] < xs["ship"]  # layers: longest needs path
    trigger = html.split('data-trigger="nightly"', 1)[1].split("</tr>", 1)[0]
    times = re.findall(r'<time datetime="[^"]+" title="([^"]+)">([^<]+)</time>', trigger)
    assert len(times) == 3
    # 2026-03-01 12:00 UTC: the next 02:30 in Paris is 2026-03-02 01:30 UTC
    assert times[0] == ("2026-03-02 02:30 CET (Europe/Paris) · 2026-03-02 01:30 UTC", "in 13 h")
    assert "2026-03-29 02:30 does not exist in Europe/Paris" in trigger
    assert "2026-10-25 02:30 happens twice in Europe/Paris" in trigger


def test_the_run_history_pages_by_keyset(writer: tuple) -> None:
    client, svc, _ = writer
    made = [add_run(svc, Status.SUCCESS, flow_id="deploy") for _ in range(23)]
    first = client.get(PAGE).text
    shown = re.findall(r'<tr data-run="([^"]+)">', first)
    assert shown == made[::-1][:20]
    older = re.search(r'href="([^"]+)" id="older"', first)
    assert older is not None and f"before={made[3]}" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert re.findall(r'<tr data-run="([^"]+)">', second) == made[2::-1]
    assert 'id="older"' not in second and 'id="newest"' in second


def test_flows_on_the_index_link_to_their_page(writer: tuple) -> None:
    client, _, _ = writer
    assert f'href="{PAGE}"' in client.get("/").text


def test_an_unreadable_or_unknown_flow_is_not_found(writer: tuple) -> None:
    client, _, _ = writer
    assert client.get(f"/flows/{NOT_MINE}/payroll").status_code == 404
    assert client.get(f"/flows/{MINE}/nope").status_code == 404
    assert client.get(f"/flows/{MINE}/nightly").status_code == 200


def test_a_bad_input_is_shown_next_to_its_field_with_what_was_typed(writer: tuple) -> None:
    client, svc, runs = writer
    csrf = _csrf(client.get(PAGE).text)
    answer = client.post(f"{PAGE}/run", data={"csrf": csrf, "count": "three", "tag": "v1",
                                              "target": "prod"})
    assert answer.status_code == 400
    error = re.search(r'id="error-count"[^>]*>([^<]+)<', answer.text)
    assert error is not None and "expected a whole number, got &#39;three&#39;" in error.group(1)
    assert 'value="three"' in answer.text and "<option selected>prod</option>" in answer.text
    missing = client.post(f"{PAGE}/run", data={"csrf": csrf})
    assert missing.status_code == 400 and "required; no default" in missing.text
    assert runs.submitted == []


def test_a_good_run_starts_and_goes_to_the_run_page(writer: tuple) -> None:
    client, svc, runs = writer
    csrf = _csrf(client.get(PAGE).text)
    answer = client.post(f"{PAGE}/run", data={"csrf": csrf, "count": "3", "tag": "v7",
                                              "target": "prod"},
                         files={"data": ("rows.csv", b"a,b\n1,2\n", "text/csv")})
    assert answer.status_code == 303
    [run] = runs.submitted
    assert answer.headers["location"] == f"/runs/{run['run_id']}"
    inputs = run["inputs"]
    assert {k: inputs[k] for k in ("target", "dry_run", "count", "tag")} == {
        "target": "prod", "dry_run": False, "count": 3, "tag": "v7"}
    assert inputs["data"]["source"] == "uploaded file rows.csv" and inputs["data"]["size"] == 8
    assert (run["trigger"].type, run["trigger"].actor) == (TriggerType.MANUAL, USER)
    recorded = svc.store.get_run(run["run_id"])
    assert recorded is not None and recorded.commit == DEPLOY_SHA
    assert list((svc.settings.data_dir).glob("uploads-*")) == []  # the upload folder is gone


def test_a_forged_post_is_refused(writer: tuple) -> None:
    client, svc, runs = writer
    assert client.post(f"{PAGE}/run", data={"count": "1"}).status_code == 403
    assert client.post(f"{PAGE}/run", data={"count": "1", "csrf": "forged"}).status_code == 403
    assert client.post(f"{PAGE}/pause", data={"csrf": "forged"}).status_code == 403
    assert runs.submitted == [] and not svc.registry.get(MINE, "deploy").paused


def test_pause_and_resume_from_the_page(writer: tuple) -> None:
    client, svc, _ = writer
    page = client.get(PAGE).text
    assert 'id="pause"' in page
    paused = client.post(f"{PAGE}/pause", data={"csrf": _csrf(page)})
    assert (paused.status_code, paused.headers["location"]) == (303, PAGE)
    page = client.get(PAGE).text
    assert 'id="flow-paused"' in page and 'id="resume"' in page
    trigger = page.split('data-trigger="nightly"', 1)[1].split("</tr>", 1)[0]
    assert "st-paused" in trigger and "<time" not in trigger.split("</td>")[3]
    assert client.post(f"{PAGE}/resume", data={"csrf": _csrf(page)}).status_code == 303
    assert 'id="pause"' in client.get(PAGE).text
    assert not svc.registry.get(MINE, "deploy").paused


def test_a_reader_sees_no_write_buttons_and_cannot_write(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    client, svc, runs = _client(sqlite_engine, tmp_path, fake_github, permission="read")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'id="run-form"' not in page.text and 'id="pause"' not in page.text
    assert 'name="csrf"' not in page.text
    answer = client.post(f"{PAGE}/run", data={"count": "1"})
    assert answer.status_code == 403
    assert client.post(f"{PAGE}/pause").status_code == 403
    assert runs.submitted == []
