"""The flow page in a real browser (Debian's Chromium through Playwright, the app
over HTTP, sign-in through the fake GitHub): the Run form refuses a bad input next
to its field, and a good one — a file uploaded — opens the new run's page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from tests.bot.test_ui_browser import ARTIFACTS, _sign_in, browser  # noqa: F401  (fixture)
from tests.bot.ui_flow_kit import StagingRuns, flow_services
from tests.bot.ui_kit import MINE, free_port, served, ui_app
from tests.fakegithub.server import FakeGitHub

pytestmark = pytest.mark.browser


@pytest.fixture
def bot(sqlite_engine: Engine, tmp_path: Path,
        fake_github: FakeGitHub) -> Iterator[tuple[StagingRuns, str]]:
    port = free_port()
    svc, runs = flow_services(sqlite_engine, tmp_path, fake_github,
                              public_url=f"http://127.0.0.1:{port}")
    with served(ui_app(svc), port) as url:
        yield runs, url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811  (the imported fixture)
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    yield context.new_page()
    context.close()


def test_the_run_form_refuses_a_bad_input_inline_then_starts_a_run(
        bot: tuple[StagingRuns, str], page: Page, tmp_path: Path) -> None:
    runs, url = bot
    _sign_in(page, url)
    page.click(f'section[data-repo="{MINE}"] a.flow-link:has-text("deploy")')
    page.wait_for_url(f"{url}/flows/{MINE}/deploy")
    expect(page.locator("svg.dag .dag-node")).to_have_count(4)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flow.png"), full_page=True)

    page.fill("#input-count", "three")
    page.select_option("#input-target", "prod")
    page.click("#run-submit")
    expect(page.locator("#error-count")).to_contain_text("expected a whole number")
    expect(page.locator("#input-count")).to_have_value("three")  # what was typed is kept
    expect(page.locator("#input-target")).to_have_value("prod")
    assert runs.submitted == []

    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    page.fill("#input-count", "3")
    page.fill("#input-tag", "v2")
    page.set_input_files("#input-data", str(data))
    page.click("#run-submit")
    page.wait_for_url(f"{url}/runs/*")
    [run] = runs.submitted
    assert page.url == f"{url}/runs/{run['run_id']}"
    expect(page.locator("h1")).to_contain_text("deploy")
    expect(page.locator("table.files")).to_contain_text("uploaded file rows.csv")
    assert run["inputs"]["count"] == 3 and run["inputs"]["target"] == "prod"
