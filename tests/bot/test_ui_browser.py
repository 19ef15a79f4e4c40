"""The web UI in a real browser: Debian's Chromium driven by Playwright, the app
served over HTTP, GitHub sign-in through the fake GitHub's OAuth web flow.
Screenshots of the pages go to ``tests/artifacts/`` (git-ignored)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.engine import Engine

from bot.services import Services
from runner.state.records import Status
from tests.bot.ui_kit import (
    MINE,
    NOT_MINE,
    PUBLIC,
    USER,
    add_run,
    arrange_github,
    free_port,
    served,
    ui_app,
    ui_services,
)
from tests.fakegithub.server import FakeGitHub

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# what a page is waited for to become true (a live update, a swap): Playwright's 5 s
# is tight on a loaded two-core machine; a condition that never holds still fails
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: ./dev test installs it"
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True,
                                              args=args)
        yield launched
        launched.close()


@pytest.fixture
def bot(sqlite_engine: Engine, tmp_path: Path,
        fake_github: FakeGitHub) -> Iterator[tuple[Services, str]]:
    arrange_github(fake_github)
    port = free_port()
    svc = ui_services(sqlite_engine, tmp_path, fake_github,
                      public_url=f"http://127.0.0.1:{port}")
    for status in (Status.SUCCESS, Status.FAILED, Status.SUCCESS, Status.CANCELLED):
        add_run(svc, status)
    add_run(svc, Status.FAILED, repo=NOT_MINE, flow_id="payroll")
    with served(ui_app(svc), port) as url:
        yield svc, url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    yield context.new_page()
    context.close()


def _sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    expect(page.locator("#sign-in")).to_be_visible()  # sent to sign in
    page.click("#sign-in")  # → the fake's authorize URL → back with a code
    page.wait_for_url(f"{url}/")


def test_signing_in_through_github_shows_only_readable_repositories(
        bot: tuple[Services, str], page: Page, fake_github: FakeGitHub) -> None:
    svc, url = bot
    _sign_in(page, url)
    assert fake_github.requests_to("GET", "/login/oauth/authorize")
    expect(page.locator("header .viewer")).to_have_text(USER)
    repos = page.locator("section.repo").evaluate_all("els => els.map(e => e.dataset.repo)")
    assert repos == [MINE, PUBLIC]
    expect(page.locator("body")).not_to_contain_text("payroll")
    marks = page.locator(f'section[data-repo="{MINE}"] tr[data-flow="nightly"] a.mark')
    expect(marks).to_have_count(4)
    assert marks.nth(1).get_attribute("class") == "mark st-failed"
    nightly = page.locator(f'section[data-repo="{MINE}"] tr[data-flow="nightly"] time')
    assert "(Europe/Paris)" in (nightly.get_attribute("title") or "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flows.png"), full_page=True)
    marks.nth(1).click()
    expect(page.locator("#run-status")).to_have_text("failed")
    expect(page.locator("pre.log")).to_contain_text("compiling")
    expect(page.locator(".started-by")).to_have_text(f"{USER} (manual run)")
    page.screenshot(path=str(ARTIFACTS / "run.png"), full_page=True)


def test_a_signed_out_visitor_is_sent_to_sign_in(bot: tuple[Services, str],
                                                 page: Page) -> None:
    _, url = bot
    page.goto(f"{url}/runs/whatever")
    assert page.url == f"{url}/login?next=%2Fruns%2Fwhatever"
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page.locator("header .viewer")).to_have_count(0)


def test_signing_out_ends_the_session(bot: tuple[Services, str], page: Page) -> None:
    _, url = bot
    _sign_in(page, url)
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(f"{url}/login")
    page.goto(f"{url}/")
    assert page.url.startswith(f"{url}/login")


def test_the_layout_fits_a_phone_in_dark_mode(bot: tuple[Services, str],
                                              browser: Browser) -> None:
    _, url = bot
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  color_scheme="dark", is_mobile=True)
    try:
        phone = context.new_page()
        _sign_in(phone, url)
        background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"  # the dark palette
        wide = phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390  # nothing wider than the phone
        ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "flows-phone-dark.png"), full_page=True)
    finally:
        context.close()
