"""A running run's page in a real browser (Debian's Chromium via Playwright): a real
task on Docker (the offline busybox image) printing lines slowly, its log arriving
over server-sent events without a reload, then cancelled from the page and its
state changing live. Without GitHub sign-in: this machine may write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from runner.backends.docker_backend import DockerBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.service import RunService
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore
from tests.bot.test_ui_browser import ARTIFACTS, browser  # noqa: F401  (a fixture)
from tests.bot.ui_kit import MINE, free_port, served, ui_app
from tests.fakes import make_services

pytestmark = pytest.mark.browser
SLOW = {"id": "slow", "tasks": [{"id": "count", "image": "busybox:latest", "commands": [
    "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo line $i; sleep 0.2; done"]}]}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811  (browser: the shared fixture)
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def running(sqlite_engine: Engine, tmp_path: Path, docker_client: docker.DockerClient,
            busybox_image: str) -> Iterator[tuple[str, str, RunService]]:
    """The bot serving its pages, and a run of ``slow`` executing on Docker."""
    clock = SystemClock()
    owner = "test-ui-run"
    runs = RunService(RunStore(sqlite_engine, clock), DockerBackend(client=docker_client,
                      owner=owner), tmp_path / "data", {}, clock, owner=owner)
    svc = make_services(sqlite_engine, clock, runs=runs, data_dir=tmp_path / "data")
    source = tmp_path / "repo"
    source.mkdir()
    submitted = runs.submit(flow_from_data(SLOW, path="flows/slow.yml"), {}, repo=MINE,
                            commit=None, source=source, trigger=Trigger(TriggerType.MANUAL, "ana"))
    worker = threading.Thread(target=runs.execute, args=(submitted.run_id,), daemon=True)
    worker.start()
    with served(ui_app(svc), free_port()) as url:
        yield url, submitted.run_id, runs
        runs.cancel(submitted.run_id)  # whatever the test did: no container left running
        worker.join(timeout=60)


def test_a_running_log_arrives_live_and_cancelling_shows_live(
        running: tuple[str, str, RunService], page: Page) -> None:
    url, run_id, runs = running
    page.goto(f"{url}/runs/{run_id}")
    log = page.locator("section.task-log[data-task=count] pre.log")
    expect(log).to_contain_text("line 2", timeout=60_000)  # the container has started
    page.evaluate("window.stayed = true")  # gone if the page were loaded again
    shown = int(log.inner_text().strip().splitlines()[-1].split()[-1])
    expect(log).to_contain_text(f"line {shown + 3}\n", timeout=30_000)
    assert page.evaluate("window.stayed === true")  # new lines came without a reload
    expect(page.locator("#run-status")).to_have_text("running")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-live.png"), full_page=True)
    page.click("#cancel-run")  # a form POST: back on the page, the stream says the rest
    expect(page.locator("#run-status")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#cancel-run")).to_have_count(0)
    record = runs.store.get_run(run_id)
    assert record is not None and record.status is Status.CANCELLED
