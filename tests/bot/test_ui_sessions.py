"""Web sessions live in the database: two app instances on one database (as two
replicas are) — sign in on one, the other knows the session, checks the user's
repositories again with the token it finds there (encrypted at rest), honours the
expiry, and a sign-out on either ends it on both. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.services import Services
from bot.web.sessions import token_cipher, web_sessions
from tests.bot.test_ui_access import _sign_in
from tests.bot.ui_kit import MINE, NOT_MINE, PUBLIC, USER, arrange_github, ui_services
from tests.clock import FakeClock
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient


def _replica(engine: Engine, data_dir: Path, fake: FakeGitHub) -> tuple[Services, TestClient]:
    svc = ui_services(engine, data_dir, fake)
    return svc, TestClient(create_app(svc.settings, svc), follow_redirects=False)


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(web_sessions)).scalar_one())


def _shows_mine(client: TestClient) -> bool:
    page = client.get("/")
    return page.status_code == 200 and f'data-repo="{MINE}"' in page.text \
        and NOT_MINE not in page.text


def test_a_session_signed_in_on_one_replica_is_served_and_ended_by_another(
        db_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    arrange_github(fake_github)
    svc_a, one = _replica(db_engine, tmp_path / "a", fake_github)
    svc_b, other = _replica(db_engine, tmp_path / "b", fake_github)
    assert _sign_in(one, fake_github).status_code == 303
    assert _rows(db_engine) == 1
    other.cookies.set("flowbot", one.cookies["flowbot"])  # the browser's next request
    assert _shows_mine(other) and USER in other.get("/").text

    with db_engine.connect() as conn:
        row = conn.execute(select(web_sessions)).one()
    assert "gho_" not in row.token and len(row.id_hash) == 64  # encrypted; the id hashed
    assert token_cipher(svc_a.settings.session_secret).decrypt(
        row.token.encode()).decode().startswith("gho_")
    payload = one.cookies["flowbot"].split(".")[0]  # signed, not secret: what it carries
    assert set(json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))) == {"sid"}

    fake_github.add_collaborator(NOT_MINE, USER, "read")  # GitHub changed its mind
    clock_b = svc_b.clock
    assert isinstance(clock_b, FakeClock)
    clock_b.advance(svc_b.settings.access_ttl_seconds + 1)
    page = other.get("/")  # checked again with the token the other replica stored
    assert page.status_code == 200 and f'data-repo="{NOT_MINE}"' in page.text
    assert f'data-repo="{NOT_MINE}"' in one.get("/").text  # and recorded for both

    out = other.post("/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert _rows(db_engine) == 0
    one_again = one.get("/")  # the first replica's cookie still names the session
    assert (one_again.status_code, one_again.headers["location"]) == (303, "/login?next=%2F")


def test_an_expired_session_is_refused_and_removed(
        db_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    arrange_github(fake_github)
    svc_a, one = _replica(db_engine, tmp_path / "a", fake_github)
    svc_b, other = _replica(db_engine, tmp_path / "b", fake_github)
    _sign_in(one, fake_github)
    other.cookies.set("flowbot", one.cookies["flowbot"])
    assert _shows_mine(other)
    clock_b = svc_b.clock
    assert isinstance(clock_b, FakeClock)
    clock_b.advance(svc_b.settings.session_max_age_seconds)  # the cookie kept beyond it
    assert other.get("/").status_code == 303
    assert _rows(db_engine) == 0
    assert one.get("/").status_code == 303  # gone for every replica
    _sign_in(one, fake_github)  # signing in again starts afresh
    assert _shows_mine(one) and PUBLIC in one.get("/").text
