"""``/runs`` in Chromium: choosing a status filters the table in place (htmx) and
the address follows, so the filtered list can be shared or reloaded."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from bot.services import Services
from tests.bot.test_ui_browser import ARTIFACTS, _sign_in, bot, browser, page
from tests.bot.ui_kit import NOT_MINE

pytestmark = pytest.mark.browser
__all__ = ["bot", "browser", "page"]  # the fixtures, shared with the other browser tests


def test_runs_are_filtered_by_status_in_place(bot: tuple[Services, str], page: Page) -> None:
    _, url = bot
    _sign_in(page, url)
    page.click("header nav a:has-text('Runs')")
    page.wait_for_url(f"{url}/runs")
    rows = page.locator("#runs tr[data-run]")
    expect(rows).to_have_count(4)  # ana's runs; the unreadable repository's never
    expect(page.locator("#runs")).not_to_contain_text(NOT_MINE)
    page.select_option("select[name=status]", "failed")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("failed")
    page.wait_for_url(lambda address: "status=failed" in address)
    expect(page.locator(".local").first).not_to_contain_text("UTC")  # the browser's zone
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)
    page.reload()  # the address holds the filter
    expect(rows).to_have_count(1)
    expect(page.locator("select[name=status]")).to_have_value("failed")
