"""``/runs`` and ``/schedules`` over the real app and database: filters, keyset pages
without overlap or gaps, only readable repositories, schedule states and skipped
slots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services import Services
from runner.state.records import Status, Trigger, TriggerType
from tests.bot.test_ui_access import _sign_in
from tests.bot.ui_kit import MINE, NOT_MINE, PUBLIC, add_run, arrange_github, ui_app, ui_services
from tests.clock import FakeClock
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient

ROW = re.compile(r'<tr data-run="([0-9a-f]+)">')


def _runs(page: str) -> list[str]:
    return ROW.findall(page)


def _older(page: str) -> str | None:
    found = re.search(r'href="([^"]+)" rel="next"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def _record(svc: Services, status: Status, repo: str = MINE, flow_id: str = "nightly",
            trigger: TriggerType = TriggerType.MANUAL) -> str:
    registered = svc.registry.get(repo, flow_id)
    assert registered is not None
    return svc.store.create_run(registered.flow, repo=repo, commit="a" * 40,
                                trigger=Trigger(trigger, "ana"), inputs={},
                                status=status).id


@pytest.fixture
def svc(sqlite_engine: Engine, tmp_path: Path) -> Services:
    return ui_services(sqlite_engine, tmp_path, None)  # loopback: this machine sees all


def test_runs_are_filtered_by_status_repository_flow_trigger_and_day(svc: Services) -> None:
    failed = add_run(svc, Status.FAILED)
    ok = add_run(svc, Status.SUCCESS)
    lint = add_run(svc, Status.FAILED, repo=PUBLIC, flow_id="lint")
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    clock.advance(2 * 86400)
    scheduled = _record(svc, Status.SUCCESS, trigger=TriggerType.SCHEDULE)
    client = TestClient(ui_app(svc))
    page = client.get("/runs")
    assert page.status_code == 200
    assert _runs(page.text) == [scheduled, lint, ok, failed]  # newest first
    assert _runs(client.get("/runs", params={"status": "failed"}).text) == [lint, failed]
    assert _runs(client.get("/runs", params={"repo": PUBLIC}).text) == [lint]
    assert _runs(client.get("/runs", params={"flow": "nightly", "status": "success"}
                            ).text) == [scheduled, ok]
    assert _runs(client.get("/runs", params={"trigger": "schedule"}).text) == [scheduled]
    assert _runs(client.get("/runs", params={"until": "2026-03-01"}).text) == [lint, ok, failed]
    assert _runs(client.get("/runs", params={"since": "2026-03-02"}).text) == [scheduled]
    chosen = client.get("/runs", params={"status": "failed"}).text
    assert "<option selected>failed</option>" in chosen
    assert '<time datetime="' in chosen and 'title="2026-03-01 12:00 UTC"' in chosen


@pytest.mark.parametrize(("params", "named"), [
    ({"status": "broken"}, "status: 'broken' is not one of queued, running"),
    ({"trigger": "cron"}, "trigger: 'cron' is not one of manual, schedule, cli"),
    ({"since": "yesterday"}, "since: 'yesterday' is not a date (YYYY-MM-DD)"),
    ({"before": "nonsense"}, "before: 'nonsense' is not a page cursor"),
])
def test_a_bad_filter_is_400_naming_the_field(svc: Services, params: dict[str, str],
                                              named: str) -> None:
    page = TestClient(ui_app(svc)).get("/runs", params=params)
    assert page.status_code == 400 and named in page.text.replace("&#39;", "'")


def test_keyset_pages_neither_overlap_nor_leave_gaps(svc: Services) -> None:
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    made = []
    for i in range(130):  # runs created in the same instant share a page boundary
        made.append(_record(svc, Status.FAILED if i % 3 else Status.SUCCESS))
        if i % 4 == 3:
            clock.advance(60)
    client = TestClient(ui_app(svc))
    for params, expected_count in (({}, 130), ({"status": "failed"}, 86)):
        seen: list[str] = []
        page = client.get("/runs", params=params).text
        pages = 1
        while True:
            seen.extend(_runs(page))
            link = _older(page)
            if link is None:
                break
            assert "before=" in link and "OFFSET" not in link
            page = client.get(link).text
            pages += 1
        assert len(seen) == len(set(seen)) == expected_count  # no overlap, no gap
        assert pages == -(-expected_count // 50)
        assert set(seen) <= set(made)
    last = client.get("/runs", params={"before": "2000-01-01T00:00:00Z,0"}).text
    assert _runs(last) == [] and "No runs older than these match." in last


def test_runs_of_unreadable_repositories_are_never_listed(
        sqlite_engine: Engine, tmp_path: Path, fake_github: FakeGitHub) -> None:
    arrange_github(fake_github)
    svc = ui_services(sqlite_engine, tmp_path, fake_github)
    hidden = add_run(svc, Status.FAILED, repo=NOT_MINE, flow_id="payroll")
    mine = add_run(svc, Status.FAILED)
    client = TestClient(ui_app(svc), follow_redirects=False)
    assert client.get("/runs").status_code == 303  # signed out: sent to sign in
    _sign_in(client, fake_github)
    for params in ({}, {"status": "failed"}, {"repo": NOT_MINE}, {"flow": "payroll"}):
        page = client.get("/runs", params=params)
        assert page.status_code == 200
        assert hidden not in page.text and NOT_MINE not in page.text
    assert _runs(client.get("/runs").text) == [mine]
    schedules = client.get("/schedules")
    assert schedules.status_code == 200 and NOT_MINE not in schedules.text
    assert f'data-schedule="{MINE}/nightly/hourly"' in schedules.text


def test_schedules_show_state_next_fires_and_skipped_slots(svc: Services) -> None:
    svc.schedules.pause(PUBLIC, "lint")
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    clock.advance(3 * 3600 + 60)
    skipped = svc.schedules.resume(PUBLIC, "lint")
    assert skipped == 3
    svc.schedules.pause(NOT_MINE, "payroll")
    page = TestClient(ui_app(svc)).get("/schedules")
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-schedule="([^"]+)">(.*?)</tr>', page.text, re.S))
    assert set(rows) == {f"{MINE}/nightly/hourly", f"{PUBLIC}/lint/hourly",
                         f"{NOT_MINE}/payroll/hourly"}
    assert 'st-paused">paused' in rows[f"{NOT_MINE}/payroll/hourly"]
    active = rows[f"{PUBLIC}/lint/hourly"]
    assert 'st-active">active' in active
    assert active.count("<time ") == 3  # the next three fires
    assert "(Europe/Paris)" in active and 'title="2026-03-01 16:00 UTC"' in active
    skipped_rows = page.text.split("Slots recorded as skipped", 1)[1]
    assert skipped_rows.count("<tr><td>") == 3 and "paused" in skipped_rows
