"""``/runs`` in Chromium: choosing a status filters the table in place (htmx) and
the address follows, so the filtered list can be shared or reloaded. ``/schedules``
shows an active and a paused schedule, next fires and the last fire's run; and
``/api/docs`` renders."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from bot.services import Services
from runner.scheduling.fires import Fire
from runner.scheduling.scheduler import Scheduler
from runner.state.records import Status
from tests.bot.test_ui_browser import ARTIFACTS, _sign_in, bot, browser, page
from tests.bot.ui_kit import MINE, NOT_MINE, NOW, PUBLIC, add_run
from tests.clock import FakeClock

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


class _Sink:
    """Starts ``nightly``'s slot as ``run_id``; declines the others."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def fire(self, fire: Fire) -> str | None:
        return self.run_id if (fire.repo, fire.flow_id) == (MINE, "nightly") else None


def test_schedules_show_state_next_fires_and_the_last_fires_run(
        bot: tuple[Services, str], page: Page) -> None:
    svc, url = bot
    fired = add_run(svc, Status.SUCCESS)  # the run the 13:00 slot started
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    svc.schedules.pause(PUBLIC, "lint")
    clock.set(NOW.replace(hour=13, minute=1))  # the 13:00 slot is due
    Scheduler(svc.schedules, _Sink(fired), clock).tick(clock.now())
    _sign_in(page, url)
    page.click("header nav a:has-text('Schedules')")
    page.wait_for_url(f"{url}/schedules")
    active = page.locator(f"tr[data-schedule='{MINE}/nightly/hourly']")
    paused = page.locator(f"tr[data-schedule='{PUBLIC}/lint/hourly']")
    expect(active.locator(".badge")).to_have_text("active")
    expect(paused.locator(".badge")).to_have_text("paused")
    expect(page.locator(f"tr[data-schedule^='{NOT_MINE}/']")).to_have_count(0)
    next_fires = active.locator(".next-fires time")
    expect(next_fires).to_have_count(3)
    expect(next_fires.first).to_have_attribute("title", "2026-03-01 14:00 UTC")
    expect(paused.locator(".next-fires")).to_have_text("none")  # paused: nothing will fire
    expect(active.locator(".last-fire time")).to_have_attribute("title", "2026-03-01 13:00 UTC")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "schedules.png"), full_page=True)
    active.locator(f".last-fire a:has-text('{fired}')").click()
    page.wait_for_url(f"{url}/runs/{fired}")
    expect(page.locator("h1")).to_have_text(f"Run {fired}: nightly")


def test_the_api_docs_render(bot: tuple[Services, str], page: Page) -> None:
    _, url = bot
    page.goto(f"{url}/api/docs")
    expect(page.locator("code", has_text="GET /api/runs").first).to_be_visible()
