"""A read-only user in a real browser (Debian's Chromium via Playwright): signed in
through the fake GitHub, ``ana`` only reads ``acme/flows`` (GitHub permission
``read``), so its run pages show no Cancel or Re-run, and POSTs forged from her
own browser session get 403 — without a CSRF token, and also with the session's
real one (she writes to ``open/tools``, whose run page hands it out): the refusal
names the permission GitHub gave the bot's own client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from bot.github.client import HttpPolicy, PyGithubClients
from bot.services import RepoClients, Services
from bot.web.actions import CSRF_FIELD
from runner.state.records import Status
from tests.bot.test_ui_browser import browser  # noqa: F401  (a fixture)
from tests.bot.ui_kit import (
    MINE,
    PUBLIC,
    USER,
    add_run,
    arrange_github,
    free_port,
    running_run,
    served,
    ui_app,
    ui_services,
)
from tests.fakegithub.server import FakeGitHub

pytestmark = pytest.mark.browser
BOT_TOKEN = "ghp_bot-token-for-readonly-tests"
PERMISSION = r"/repos/[^/]+/[^/]+/collaborators/[^/]+/permission"


@dataclass(frozen=True)
class ReadOnly:
    url: str
    svc: Services
    running: str  # a run of acme/flows whose task is running
    failed: str  # a finished run of acme/flows (a writer would see Re-run)
    theirs: str  # a finished run of open/tools, where ana writes




@pytest.fixture
def bot(sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> Iterator[ReadOnly]:
    arrange_github(fake_github)  # ana: "read" on acme/flows
    fake_github.add_collaborator(PUBLIC, USER, "write")
    fake_github.add_token(BOT_TOKEN, "flowbot")
    for repo in (MINE, PUBLIC):  # the bot is installed there: it asks GitHub for them
        fake_github.add_collaborator(repo, "flowbot", "write")
    port = free_port()
    svc = ui_services(sqlite_engine, tmp_path, fake_github,
                      public_url=f"http://127.0.0.1:{port}")
    svc.clients = RepoClients(PyGithubClients(fake_github.url, token=BOT_TOKEN,
                                              policy=HttpPolicy.fast()), svc.deliveries)
    failed = add_run(svc, Status.FAILED)
    theirs = add_run(svc, Status.SUCCESS, repo=PUBLIC, flow_id="lint")
    running = running_run(svc, actor="bob")
    with served(ui_app(svc), port) as url:
        yield ReadOnly(url, svc, running, failed, theirs)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811  (browser: the shared fixture)
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    yield context.new_page()
    context.close()


def _sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    page.click("#sign-in")  # → the fake's authorize URL → back with a code
    page.wait_for_url(f"{url}/")
    expect(page.locator("header .viewer")).to_have_text(USER)


def test_a_reader_sees_no_write_buttons_and_forged_posts_get_403(
        bot: ReadOnly, page: Page, fake_github: FakeGitHub) -> None:
    _sign_in(page, bot.url)
    page.goto(f"{bot.url}/runs/{bot.running}")
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("pre.log")).to_contain_text("compiling")
    expect(page.locator("#cancel-run")).to_have_count(0)
    expect(page.locator("#rerun-run")).to_have_count(0)
    expect(page.locator(f"input[name={CSRF_FIELD}]")).to_have_count(0)  # no token handed out
    asked = fake_github.requests_to("GET", PERMISSION)
    assert any(f"/repos/{MINE}/collaborators/{USER}/permission" in r.path for r in asked)
    page.goto(f"{bot.url}/runs/{bot.failed}")
    expect(page.locator("#run-status")).to_have_text("failed")
    expect(page.locator("#rerun-run")).to_have_count(0)

    # Forged from her own browser: the session cookie goes along, no token does.
    cancel = f"{bot.url}/runs/{bot.running}/cancel"
    forged = page.request.post(cancel, form={CSRF_FIELD: "forged"}, max_redirects=0)
    assert forged.status == 403
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: "POST", credentials: "same-origin",
             headers: {"Content-Type": "application/x-www-form-urlencoded"},
             body: "csrf=forged"})).status""", cancel)
    assert status == 403

    # The session's real token (from a run page where she writes) does not help.
    page.goto(f"{bot.url}/runs/{bot.theirs}")
    expect(page.locator("#rerun-run")).to_be_visible()
    token = page.locator(f"#run-state input[name={CSRF_FIELD}]").first.get_attribute("value")
    assert token
    before = len(bot.svc.store.runs_page(limit=50))
    for action, run_id in (("cancel", bot.running), ("rerun", bot.failed)):
        refused = page.request.post(f"{bot.url}/runs/{run_id}/{action}",
                                    form={CSRF_FIELD: token}, max_redirects=0)
        assert refused.status == 403, action
        assert f"{USER} needs write permission on {MINE}" in refused.text()
        assert "read" in refused.text()
    assert len(bot.svc.store.runs_page(limit=50)) == before  # no run started again
    record = bot.svc.store.get_run(bot.running)
    assert record is not None and record.status is Status.RUNNING  # nothing was cancelled
    page.goto(f"{bot.url}/runs/{bot.running}")  # and the page still says so
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#cancel-run")).to_have_count(0)
