"""Who sees what, over the real app, a real database and the fake GitHub over HTTP:
the OAuth web flow, only readable repositories on pages and in the read API, the
session cookie's attributes, the loopback rule without sign-in, the start-up note."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.settings import Settings
from bot.web.auth import LOOPBACK_ONLY, is_loopback
from runner.errors import ConfigError
from runner.state.records import Status
from tests.bot.ui_kit import MINE, NOT_MINE, PUBLIC, USER, add_run, arrange_github, ui_services
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient
from tests.polling import wait_until

TOKEN = "api-t0ken-for-ui-tests"


@pytest.fixture
def signed_out(sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> TestClient:
    arrange_github(fake_github)
    svc = ui_services(sqlite_engine, tmp_path, fake_github)
    svc.settings = replace(svc.settings, api_token=TOKEN)
    add_run(svc, Status.FAILED, repo=NOT_MINE, flow_id="payroll")
    add_run(svc, Status.SUCCESS)
    return TestClient(create_app(svc.settings, svc), follow_redirects=False)


def _sign_in(client: TestClient, fake: FakeGitHub) -> httpx.Response:
    """The OAuth web flow as a browser walks it: flowbot → GitHub → flowbot."""
    to_github = client.get("/login/github", params={"next": "/api/runs"})
    assert to_github.status_code == 302
    authorize = urlsplit(to_github.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == fake.web_url
    assert authorize.path == "/login/oauth/authorize"
    back = httpx.get(to_github.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert target.path == "/auth/callback" and "code" in parse_qs(target.query)
    return client.get(f"{target.path}?{target.query}")


def test_signing_in_shows_only_the_repositories_github_lets_the_user_read(
        signed_out: TestClient, fake_github: FakeGitHub) -> None:
    done = _sign_in(signed_out, fake_github)
    assert (done.status_code, done.headers["location"]) == (303, "/api/runs")
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=28800" in cookie
    assert "gho_" not in done.headers["set-cookie"]  # no GitHub token in the cookie
    page = signed_out.get("/")
    assert page.status_code == 200 and USER in page.text
    assert f'data-repo="{MINE}"' in page.text and f'data-repo="{PUBLIC}"' in page.text
    assert NOT_MINE not in page.text and "payroll" not in page.text
    runs = signed_out.get("/api/runs").json()
    assert {run["repo"] for run in runs} == {MINE}
    flows = signed_out.get("/api/flows").json()
    assert {flow["repo"] for flow in flows} == {MINE, PUBLIC}
    schedules = signed_out.get("/api/schedules", params={"repo": NOT_MINE}).json()
    assert schedules == []
    assert signed_out.get("/api/runs", params={"repo": NOT_MINE}).json() == []


def test_a_run_of_an_unreadable_repository_is_not_found(
        signed_out: TestClient, fake_github: FakeGitHub) -> None:
    _sign_in(signed_out, fake_github)
    hidden = signed_out.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"},
                            params={"repo": NOT_MINE}).json()
    [run] = hidden
    assert signed_out.get(f"/runs/{run['id']}").status_code == 404
    assert signed_out.get(f"/runs/{run['id']}/logs/build").status_code == 404


def test_signed_out_readers_are_sent_to_sign_in_or_refused(signed_out: TestClient) -> None:
    page = signed_out.get("/runs/x?y=1")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Fruns%2Fx%3Fy%3D1")
    login = signed_out.get("/login", params={"next": "/runs/x?y=1"})
    assert 'href="/login/github?next=%2Fruns%2Fx%3Fy%3D1"' in login.text
    for path in ("/api/runs", "/api/flows", "/api/schedules"):
        assert signed_out.get(path).status_code == 401
        assert signed_out.get(path, headers={"Authorization": f"Bearer {TOKEN}"}
                              ).status_code == 200
    assert signed_out.get("/healthz").status_code == 200
    assert signed_out.get("/static/flowbot.css").status_code == 200


def test_a_forged_state_is_400_and_signs_nobody_in(
        signed_out: TestClient, fake_github: FakeGitHub) -> None:
    signed_out.get("/login/github")
    forged = signed_out.get("/auth/callback", params={"code": "abc", "state": "forged"})
    assert forged.status_code == 400 and "Sign-in failed" in forged.text
    assert signed_out.get("/").status_code == 303


def test_sign_out_forgets_the_session(signed_out: TestClient, fake_github: FakeGitHub) -> None:
    _sign_in(signed_out, fake_github)
    assert signed_out.get("/").status_code == 200
    out = signed_out.post("/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert signed_out.get("/").status_code == 303


def test_a_next_address_never_leaves_the_site(signed_out: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        login = signed_out.get("/login", params={"next": target})
        assert 'href="/login/github?next=%2F"' in login.text


def test_without_sign_in_only_loopback_is_answered(sqlite_engine: Engine,
                                                   tmp_path: Path) -> None:
    svc = ui_services(sqlite_engine, tmp_path, None)
    app = create_app(svc.settings, svc)
    away = TestClient(app, client=("203.0.113.7", 40000))
    for path in ("/", "/api/runs", "/api/flows", "/api/schedules"):
        answer = away.get(path)
        assert answer.status_code == 403
        assert "only from this machine" in answer.text or LOOPBACK_ONLY in answer.json()["message"]
    assert away.get("/healthz").status_code == 200
    here = TestClient(app)
    assert here.get("/").status_code == 200 and "this machine" in here.get("/").text
    assert f'data-repo="{NOT_MINE}"' in here.get("/").text  # this machine sees everything


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("localhost", False),
    ("testclient", False), (None, False),
])
def test_loopback_is_an_address_never_a_name(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("missing", "variable"), [
    ("oauth_client_secret", "FLOWBOT_OAUTH_CLIENT_SECRET"),
    ("session_secret", "FLOWBOT_SESSION_SECRET"),
])
def test_sign_in_configured_halfway_is_refused(sqlite_engine: Engine, tmp_path: Path,
                                               fake_github: FakeGitHub, missing: str,
                                               variable: str) -> None:
    svc = ui_services(sqlite_engine, tmp_path, fake_github)
    svc.settings = replace(svc.settings, **{missing: ""})
    with pytest.raises(ConfigError, match=variable):
        create_app(svc.settings, svc)


@pytest.mark.parametrize(("api", "authorize"), [
    ("https://api.github.com", "https://github.com/login/oauth/authorize"),
    ("https://ghe.example/api/v3", "https://ghe.example/login/oauth/authorize"),
])
def test_oauth_urls_default_from_the_api_url(api: str, authorize: str) -> None:
    settings = Settings(github_api_url=api)
    assert settings.oauth_urls == (authorize, authorize.replace("authorize", "access_token"))
    set_ = Settings(github_api_url=api, oauth_authorize_url="https://sso.example/a",
                    oauth_token_url="https://sso.example/t")
    assert set_.oauth_urls == ("https://sso.example/a", "https://sso.example/t")


def test_serve_says_at_start_up_that_only_loopback_is_answered(tmp_path: Path) -> None:
    from tests.bot.ui_kit import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBOT_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]),
               FLOWBOT_WEBHOOK_SECRET="s3cret", FLOWBOT_GITHUB_TOKEN="t",
               FLOWBOT_BACKEND="process", FLOWBOT_DATA_DIR=str(tmp_path / "data"),
               FLOWBOT_HOST="127.0.0.1", FLOWBOT_PORT=str(free_port()))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from bot.cli import main; "
             "sys.exit(main(['serve']))"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "loopback" in log.read_text(), 60, "the start-up note")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert "GitHub sign-in is not configured" in text and "FLOWBOT_OAUTH_CLIENT_ID" in text


def test_every_link_in_the_header_leads_to_a_page(
        signed_out: TestClient, fake_github: FakeGitHub) -> None:
    _sign_in(signed_out, fake_github)
    header = signed_out.get("/").text.split("<header", 1)[1].split("</header>", 1)[0]
    links = re.findall(r'<a [^>]*href="(/[^"]*)"', header)
    assert links  # at least the flows page
    for link in links:
        assert signed_out.get(link).status_code == 200, link
