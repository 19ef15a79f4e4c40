"""A running run's page in Chromium: the attempts' timeline follows the run without a
reload (a new attempt's bar appears from the live stream), every time shows the
viewer's own local time next to the relative one (the context is in Asia/Tokyo; the
exact UTC stays in the tooltip), and the details list stands apart from the task
table. Without GitHub sign-in: this machine reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from bot.services import Services
from runner.running.logstore import log_path
from runner.state.records import Status
from tests.bot.test_ui_browser import ARTIFACTS, browser  # noqa: F401  (a fixture)
from tests.bot.ui_kit import free_port, running_run, served, ui_app, ui_services

pytestmark = pytest.mark.browser


@pytest.fixture
def tokyo(browser: Browser) -> Iterator[Page]:  # noqa: F811  (browser: the shared fixture)
    context = browser.new_context(viewport={"width": 1000, "height": 900},
                                  timezone_id="Asia/Tokyo", locale="en-GB")
    yield context.new_page()
    context.close()


@pytest.fixture
def served_run(sqlite_engine: Engine, tmp_path: Path) -> Iterator[tuple[Services, str, str]]:
    svc = ui_services(sqlite_engine, tmp_path, None)
    run_id = running_run(svc)  # created and started at 2026-03-01 12:00 UTC
    with served(ui_app(svc), free_port()) as url:
        yield svc, url, run_id


def test_the_timeline_grows_live_and_times_read_in_the_viewers_zone(
        served_run: tuple[Services, str, str], tokyo: Page) -> None:
    svc, url, run_id = served_run
    tokyo.goto(f"{url}/runs/{run_id}")
    created = tokyo.locator("dl.facts time").first
    expect(created).to_have_attribute("title", "2026-03-01 12:00 UTC")
    local = tokyo.locator("dl.facts time + .local").first
    expect(local).to_have_text("1 Mar 2026, 21:00")  # noon UTC is 21:00 in Tokyo
    expect(local).to_have_attribute("data-local-zone", "browser")

    table = tokyo.locator("#run-state table.tasks").bounding_box()
    facts = tokyo.locator("dl.facts").bounding_box()
    assert table is not None and facts is not None
    assert facts["y"] - (table["y"] + table["height"]) >= 12  # a gap, not glued on

    bars = tokyo.locator("#run-timeline svg.gantt rect.gantt-running")
    expect(bars).to_have_count(1)
    tokyo.evaluate("window.stayed = true")  # gone if the page were loaded again
    svc.store.finish_attempt(run_id, "build", 1, Status.FAILED, exit_code=1)
    again = log_path(svc.settings.data_dir, run_id, "build", 2)
    again.write_text("retrying\n")
    svc.store.start_attempt(run_id, "build", 2, str(again))
    expect(tokyo.locator('#run-timeline rect.gantt-running[data-attempt="2"]')).to_have_count(1)
    expect(tokyo.locator('#run-timeline rect.gantt-running.st-failed[data-attempt="1"]')
           ).to_have_count(1)
    expect(tokyo.locator("section.task-log[data-task=build] pre.log")).to_have_text("retrying\n")
    assert tokyo.evaluate("window.stayed === true")  # all of it without a reload
    ARTIFACTS.mkdir(exist_ok=True)
    tokyo.screenshot(path=str(ARTIFACTS / "run-timeline.png"), full_page=True)
