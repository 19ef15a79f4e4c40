"""``/replicas`` in Chromium, reached from the header: two live replicas with the
runs each executes (the unreadable repository's left out) and a stopped one shown
dead with its adopter."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from bot.services import Services
from runner.state.records import Status
from runner.state.replicas import ReplicaRegistry
from tests.bot.test_ui_browser import ARTIFACTS, _sign_in, bot, browser, page
from tests.bot.ui_kit import MINE, NOT_MINE, running_run

pytestmark = pytest.mark.browser
__all__ = ["bot", "browser", "page"]  # the fixtures, shared with the other browser tests


def _owned(svc: Services, repo: str, flow_id: str, owner: str) -> str:
    """A run of ``flow_id`` that replica ``owner`` executes now."""
    run_id = running_run(svc, repo, flow_id)
    assert svc.store.take_over(run_id, None, owner)
    return run_id


def test_the_replicas_page_from_the_header(bot: tuple[Services, str], page: Page) -> None:
    svc, url = bot
    first, second, gone = (ReplicaRegistry(svc.engine, replica_id=f"web-{n}-4{n}-{n}{n}{n}{n}")
                           for n in "123")
    for registry in (gone, first, second):
        registry.register()
    gone.stop()
    assert first.take_dead() == [gone.id]
    svc.replicas = first
    mine = _owned(svc, MINE, "nightly", second.id)
    hidden = _owned(svc, NOT_MINE, "payroll", second.id)
    assert svc.store.get_run(hidden).status is Status.RUNNING  # type: ignore[union-attr]
    _sign_in(page, url)
    page.click("header nav a:has-text('Replicas')")
    page.wait_for_url(f"{url}/replicas")
    live = page.locator("table.live tr[data-replica]")
    expect(live).to_have_count(2)
    row = page.locator(f'table.live tr[data-replica="{second.id}"]')
    expect(row.locator(".count")).to_have_text("1")
    expect(row.locator(f'a[href="/runs/{mine}"]')).to_be_visible()
    expect(page.locator("#replicas")).not_to_contain_text(NOT_MINE)
    dead = page.locator(f'table.dead tr[data-replica="{gone.id}"]')
    expect(dead.locator(".why")).to_contain_text("stopped")
    expect(dead.locator(".adopter")).to_have_text(first.id)
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Replicas")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "replicas.png"), full_page=True)
    row.locator(f'a[href="/runs/{mine}"]').click()
    page.wait_for_url(f"{url}/runs/{mine}")
