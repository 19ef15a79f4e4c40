"""``/replicas`` and ``/api/replicas`` over the real app, replicas registered on one
real PostgreSQL database (a fresh one per test) and the fake GitHub over HTTP:
two live replicas with the runs each executes, a stopped one shown dead with its
adopter, and runs of repositories the viewer cannot read left out. Also the forms'
CSRF token without sign-in, which two apps on one database and data dir share."""

from __future__ import annotations

import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.services import Services
from bot.web.shared_secret import SECRET_FILE, shared_secret
from runner.errors import ConfigError
from runner.state.db import connect
from runner.state.records import Status, Trigger, TriggerType
from runner.state.replicas import ReplicaRegistry
from tests.bot.test_ui_access import _sign_in
from tests.bot.ui_kit import MINE, NOT_MINE, PUBLIC, USER, arrange_github, ui_services
from tests.conftest import fresh_database
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient

pytestmark = pytest.mark.postgres
TOKEN = "api-t0ken-for-replica-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database for this test only."""
    with fresh_database(postgres_url, f"flowbot_ui_replicas_{uuid.uuid4().hex[:12]}") as url:
        engine = connect(url)
        yield engine
        engine.dispose()


@dataclass
class Fleet:
    svc: Services
    a: ReplicaRegistry  # the replica answering the pages
    b: ReplicaRegistry
    gone: ReplicaRegistry  # stopped, adopted by ``a``
    runs: dict[str, str]  # name → run id


def _running(svc: Services, repo: str, flow_id: str, owner: str) -> str:
    """A run of ``flow_id`` that replica ``owner`` executes now."""
    registered = svc.registry.get(repo, flow_id)
    assert registered is not None
    run = svc.store.create_run(registered.flow, repo=repo, commit="a" * 40,
                               trigger=Trigger(TriggerType.MANUAL, USER), inputs={})
    assert svc.store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED],
                                    owner=owner)
    return run.id


@pytest.fixture
def fleet(pg_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> Fleet:
    arrange_github(fake_github)
    svc = ui_services(pg_engine, tmp_path, fake_github)
    svc.settings = replace(svc.settings, api_token=TOKEN)
    a, b, gone = (ReplicaRegistry(pg_engine, replica_id=f"host-{n}-{n}00-{n}{n}{n}{n}")
                  for n in "abc")
    for registry in (gone, a, b):
        registry.register()
    gone.stop()
    assert a.take_dead() == [gone.id]  # a adopts the stopped replica's work
    svc.replicas = a
    runs = {"a-mine": _running(svc, MINE, "nightly", a.id),
            "b-public": _running(svc, PUBLIC, "lint", b.id),
            "b-secret": _running(svc, NOT_MINE, "payroll", b.id)}
    return Fleet(svc, a, b, gone, runs)


def _row(html: str, replica: str) -> str:
    return html.split(f'data-replica="{replica}"', 1)[1].split("</tr>", 1)[0]


def test_the_page_lists_live_replicas_their_readable_runs_and_the_dead(
        fleet: Fleet, fake_github: FakeGitHub) -> None:
    client = TestClient(create_app(fleet.svc.settings, fleet.svc), follow_redirects=False)
    _sign_in(client, fake_github)
    page = client.get("/replicas")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/replicas" aria-current="page">Replicas</a>' in html
    live = html.split('class="replicas live"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-replica="([^"]+)"', live) == [fleet.a.id, fleet.b.id]
    mine = _row(html, fleet.a.id)
    assert "(this one)" in mine and f"<td>{socket.gethostname()}</td>" in mine
    assert '<span class="count">1</span>' in mine
    assert f'href="/runs/{fleet.runs["a-mine"]}"' in mine
    theirs = _row(live, fleet.b.id)
    assert '<span class="count">1</span>' in theirs  # the unreadable run is not counted
    assert f'href="/runs/{fleet.runs["b-public"]}"' in theirs
    assert fleet.runs["b-secret"] not in html and NOT_MINE not in html
    times = re.findall(r'<time datetime="[^"]+" title="([^"]+)">([^<]+)</time>', mine)
    assert len(times) == 2 and all(title.endswith(" UTC") for title, _ in times)
    dead = html.split('class="replicas dead"', 1)[1].split("</table>", 1)[0]
    gone = _row(dead, fleet.gone.id)
    assert "stopped" in gone and f'<span class="mono">{fleet.a.id}</span>' in gone
    assert 'hx-get="/replicas"' in html and 'hx-trigger="every 5s"' in html


def test_the_api_lists_the_same_to_the_same_readers(
        fleet: Fleet, fake_github: FakeGitHub) -> None:
    client = TestClient(create_app(fleet.svc.settings, fleet.svc), follow_redirects=False)
    assert client.get("/api/replicas").status_code == 401  # signed out
    every = client.get("/api/replicas", headers=BEARER).json()
    assert every["this"] == fleet.a.id
    assert [r["id"] for r in every["live"]] == [fleet.a.id, fleet.b.id]
    assert {run["id"] for run in every["live"][1]["runs"]} == {
        fleet.runs["b-public"], fleet.runs["b-secret"]}  # the token reads every repository
    [dead] = every["dead"]
    assert (dead["id"], dead["why"], dead["adopted_by"]) == (fleet.gone.id, "stopped", fleet.a.id)
    assert dead["stopped_at"] and every["live"][0]["heartbeat_at"]
    _sign_in(client, fake_github)
    hers = client.get("/api/replicas").json()
    assert [[run["id"] for run in r["runs"]] for r in hers["live"]] == [
        [fleet.runs["a-mine"]], [fleet.runs["b-public"]]]
    described = client.get("/api/openapi.json").json()["paths"]
    assert "401" in described["/api/replicas"]["get"]["responses"]


def test_a_replica_silent_past_its_lease_is_dead_and_not_yet_adopted(
        pg_engine: Engine, tmp_path: Path) -> None:
    svc = ui_services(pg_engine, tmp_path, None)
    quiet = ReplicaRegistry(pg_engine, heartbeat_seconds=0.01, lease_seconds=0.02,
                            replica_id="host-q-1-qqqq")
    quiet.register()
    with pg_engine.begin() as conn:  # its last beat a minute ago, by the database's clock
        conn.exec_driver_sql("UPDATE replicas SET heartbeat_at = clock_timestamp() "
                             "- interval '1 minute'")
    html = TestClient(create_app(svc.settings, svc)).get("/replicas").text
    assert 'id="no-live"' in html
    row = _row(html, quiet.id)
    assert "lease expired" in row and "not yet" in row and "1 min ago" in row


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def test_two_apps_on_one_database_accept_each_others_form_token(
        pg_engine: Engine, tmp_path: Path) -> None:
    first, second = (ui_services(pg_engine, tmp_path, None) for _ in range(2))  # no sign-in
    one = TestClient(create_app(first.settings, first), follow_redirects=False)
    other = TestClient(create_app(second.settings, second), follow_redirects=False)
    token = _csrf(one.get(f"/flows/{MINE}/nightly").text)
    assert _csrf(other.get(f"/flows/{MINE}/nightly").text) == token
    paused = other.post(f"/flows/{MINE}/nightly/pause", data={"csrf": token})
    assert paused.status_code == 303
    assert one.post(f"/flows/{MINE}/nightly/resume", data={"csrf": "forged"}).status_code == 403
    secret = (tmp_path / SECRET_FILE).read_text()
    assert secret not in token and len(token) >= 32  # derived, never the secret itself
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o077 == 0  # private to the bot


def test_replicas_racing_to_create_the_secret_share_one(tmp_path: Path) -> None:
    found: list[bytes] = []
    racers = [threading.Thread(target=lambda: found.append(shared_secret(tmp_path)))
              for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(found) == 8 and len(set(found)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no drafts left behind


def test_a_truncated_secret_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("short\n")
    with pytest.raises(ConfigError, match=r"web-secret holds 5 bytes.*delete it"):
        shared_secret(tmp_path)
