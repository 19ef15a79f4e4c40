"""The write gate of the pages (bot.web.actions) over the real app, a real database
and the fake GitHub over HTTP: the collaborator permission asked with the bot's own
client (and remembered briefly), the CSRF token of the session, this machine and
the API token without sign-in, oversized forms."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.github.client import HttpPolicy, PyGithubClients
from bot.intake.app import create_app
from bot.services import RepoClients
from bot.web.actions import BAD_CSRF, CSRF_FIELD, MAX_FORM_BYTES, WRITE_CHECK_SECONDS, Actions
from bot.web.auth import Access
from tests.bot.ui_kit import MINE, NOT_MINE, PUBLIC, USER, arrange_github, ui_services
from tests.clock import FakeClock
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient

BOT_TOKEN = "ghp_bot-token-for-action-tests"
API_TOKEN = "api-t0ken-for-action-tests"
PERMISSION = r"/repos/[^/]+/[^/]+/collaborators/[^/]+/permission"


def _app(engine: Engine, data_dir: Path, fake: FakeGitHub | None,
         fake_for_bot: FakeGitHub) -> tuple[FastAPI, FakeClock]:
    """The real app plus two routes using the gate: a form page and its POST."""
    svc = ui_services(engine, data_dir, fake)
    svc.settings = replace(svc.settings, api_token=API_TOKEN)
    svc.clients = RepoClients(PyGithubClients(fake_for_bot.url, token=BOT_TOKEN,
                                              policy=HttpPolicy.fast()), svc.deliveries)
    fake_for_bot.add_token(BOT_TOKEN, "flowbot")
    for repo in (MINE, NOT_MINE):  # the bot is installed there: it sees them
        if repo in fake_for_bot.state.repos:
            fake_for_bot.add_collaborator(repo, "flowbot", "write")
    app = create_app(svc.settings, svc)
    actions = Actions(svc, Access(svc))

    def form(repo: str, request: Request) -> Response:
        viewer = Access(svc).viewer(request.scope, request.scope.get("session"))
        assert viewer is not None
        return JSONResponse(actions.form_context(request, viewer, repo))

    async def act(repo: str, request: Request) -> Response:
        write = await actions.require_writer(request, repo)
        if isinstance(write, Response):
            return write
        return JSONResponse({"by": write.viewer.name, "form": write.form})

    app.add_api_route("/t/form/{repo:path}", form, methods=["GET"])
    app.add_api_route("/t/act/{repo:path}", act, methods=["POST"])
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    return app, clock


def _sign_in(client: TestClient) -> None:
    to_github = client.get("/login/github")
    back = httpx.get(to_github.headers["location"], follow_redirects=False)
    target = urlsplit(back.headers["location"])
    assert "code" in parse_qs(target.query)
    assert client.get(f"{target.path}?{target.query}").status_code == 303


@pytest.fixture
def signed_in(sqlite_engine: Engine, tmp_path: Path,
              fake_github: FakeGitHub) -> tuple[TestClient, FakeClock]:
    arrange_github(fake_github)
    app, clock = _app(sqlite_engine, tmp_path, fake_github, fake_github)
    client = TestClient(app, follow_redirects=False)
    _sign_in(client)
    return client, clock


def test_a_writer_with_the_sessions_token_may_act(
        signed_in: tuple[TestClient, FakeClock], fake_github: FakeGitHub) -> None:
    client, _ = signed_in
    fake_github.add_collaborator(MINE, USER, "write")
    context = client.get(f"/t/form/{MINE}").json()
    assert context["can_write"] is True and len(context["csrf"]) >= 32
    assert client.get(f"/t/form/{MINE}").json()["csrf"] == context["csrf"]  # per session
    done = client.post(f"/t/act/{MINE}", data={CSRF_FIELD: context["csrf"], "x": "1"})
    assert done.status_code == 200
    assert done.json() == {"by": USER, "form": {CSRF_FIELD: context["csrf"], "x": "1"}}


def test_a_post_without_the_right_token_is_403(
        signed_in: tuple[TestClient, FakeClock], fake_github: FakeGitHub) -> None:
    client, _ = signed_in
    fake_github.add_collaborator(MINE, USER, "admin")
    for data in ({}, {CSRF_FIELD: ""}, {CSRF_FIELD: "forged"}):
        refused = client.post(f"/t/act/{MINE}", data=data)
        assert refused.status_code == 403 and BAD_CSRF.split(",")[0] in refused.text


def test_a_reader_sees_no_write_buttons_and_is_refused(
        signed_in: tuple[TestClient, FakeClock]) -> None:
    client, _ = signed_in  # ana only reads acme/flows
    context = client.get(f"/t/form/{MINE}").json()
    assert context == {"can_write": False, "csrf": ""}
    token = client.get("/t/form/x").json()  # any page of the session has the token …
    assert token["csrf"] == ""  # … but only write forms render it
    refused = client.post(f"/t/act/{MINE}", data={CSRF_FIELD: "forged"})
    assert refused.status_code == 403


def test_a_reader_with_a_real_token_still_gets_403_naming_the_permission(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    arrange_github(fake_github)
    fake_github.add_collaborator(PUBLIC, USER, "write")
    app, _ = _app(sqlite_engine, tmp_path, fake_github, fake_github)
    client = TestClient(app, follow_redirects=False)
    _sign_in(client)
    token = client.get(f"/t/form/{PUBLIC}").json()["csrf"]  # a writer there
    refused = client.post(f"/t/act/{MINE}", data={CSRF_FIELD: token})
    assert refused.status_code == 403
    assert f"{USER} needs write permission on {MINE}" in refused.text and "read" in refused.text
    hidden = client.post(f"/t/act/{NOT_MINE}", data={CSRF_FIELD: token})
    assert hidden.status_code == 403  # not even readable: never asked of GitHub
    asked = [r.path for r in fake_github.requests_to("GET", PERMISSION)]
    assert all(NOT_MINE not in path for path in asked)


def test_the_permission_is_remembered_briefly(
        signed_in: tuple[TestClient, FakeClock], fake_github: FakeGitHub) -> None:
    client, clock = signed_in
    fake_github.add_collaborator(MINE, USER, "maintain")
    for _ in range(3):
        assert client.get(f"/t/form/{MINE}").json()["can_write"] is True
    assert len(fake_github.requests_to("GET", PERMISSION)) == 1
    fake_github.add_collaborator(MINE, USER, "triage")  # demoted on GitHub
    clock.advance(WRITE_CHECK_SECONDS + 1)
    assert client.get(f"/t/form/{MINE}").json()["can_write"] is False
    assert len(fake_github.requests_to("GET", PERMISSION)) == 2


def test_a_signed_out_post_is_sent_to_sign_in(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    arrange_github(fake_github)
    app, _ = _app(sqlite_engine, tmp_path, fake_github, fake_github)
    client = TestClient(app, follow_redirects=False)
    sent = client.post(f"/t/act/{MINE}", data={CSRF_FIELD: "x"},
                       headers={"Referer": "http://evil.example/runs/7?a=1"})
    assert (sent.status_code, sent.headers["location"]) == (303, "/login?next=%2Fruns%2F7%3Fa%3D1")


def test_without_sign_in_this_machine_writes_with_the_process_token(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    app, _ = _app(sqlite_engine, tmp_path, None, fake_github)
    local = TestClient(app, follow_redirects=False)
    context = local.get(f"/t/form/{MINE}").json()
    assert context["can_write"] is True
    assert local.post(f"/t/act/{MINE}", data={CSRF_FIELD: context["csrf"]}).status_code == 200
    assert local.post(f"/t/act/{MINE}", data={CSRF_FIELD: "forged"}).status_code == 403
    away = TestClient(app, client=("203.0.113.7", 40000))
    assert away.post(f"/t/act/{MINE}", data={CSRF_FIELD: context["csrf"]}).status_code == 403
    assert fake_github.requests_to("GET", PERMISSION) == []  # GitHub is not asked


def test_the_api_token_needs_no_csrf_token(
        signed_in: tuple[TestClient, FakeClock], fake_github: FakeGitHub) -> None:
    client, _ = signed_in
    done = client.post(f"/t/act/{NOT_MINE}", data={"x": "1"},
                       headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert done.status_code == 200 and done.json()["by"] == "API token"
    wrong = client.post(f"/t/act/{NOT_MINE}", data={"x": "1"},
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403  # falls back to the session: a reader, no token


def test_an_oversized_form_is_413(signed_in: tuple[TestClient, FakeClock],
                                  fake_github: FakeGitHub) -> None:
    client, _ = signed_in
    fake_github.add_collaborator(MINE, USER, "write")
    big = client.post(f"/t/act/{MINE}", data={"x": "y" * (MAX_FORM_BYTES + 1)})
    assert big.status_code == 413
