"""Run pages and the JSON API over a real database and real log files."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.app import create_app
from bot.services import Services
from runner.cron import FakeClock
from runner.records import Status, Trigger, TriggerType
from runner.validate import validate_files
from tests.fakes import FakeRuns, TestClient, make_services

FLOW = b"""id: tricky
triggers:
  - {id: hourly, type: schedule, cron: "@hourly", timezone: Europe/Paris}
tasks:
  - {id: build, image: "busybox:latest", commands: [echo hi]}
  - {id: test, image: "busybox:latest", commands: [echo hi], needs: [build]}
"""


@pytest.fixture
def services(sqlite_engine: Engine, tmp_path: Path) -> Services:
    svc = make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)),
                        data_dir=tmp_path)
    svc.registry.sync("acme/flows", "a" * 40, validate_files({"flows/t.yml": FLOW}).flows)
    return svc


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services.settings, services))


def _run(services: Services, tmp_path: Path) -> str:
    registered = services.registry.get("acme/flows", "tricky")
    assert registered is not None
    run = services.store.create_run(registered.flow, repo="acme/flows", commit="a" * 40,
                                    trigger=Trigger(TriggerType.MANUAL, "<script>x</script>"),
                                    inputs={})
    log = tmp_path / "build.log"
    log.write_text("compiling <b>bold</b> & done\nTOKEN=***\n")
    services.store.start_attempt(run.id, "build", 1, str(log))
    services.store.finish_attempt(run.id, "build", 1, Status.FAILED, exit_code=2)
    runs = services.runs
    assert isinstance(runs, FakeRuns)
    runs.finish(run.id, Status.FAILED, failed_task="build")
    return run.id


def test_run_page_escapes_everything(services: Services, client: TestClient,
                                     tmp_path: Path) -> None:
    run_id = _run(services, tmp_path)
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>x</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "compiling &lt;b&gt;bold&lt;/b&gt; &amp; done" in page.text
    assert f'href="/runs/{run_id}/logs/build"' in page.text
    assert 'http-equiv="refresh"' not in page.text  # over: no need to reload
    log = client.get(f"/runs/{run_id}/logs/build")
    assert log.headers["content-type"].startswith("text/plain")
    assert log.text == "compiling <b>bold</b> & done\nTOKEN=***\n"


def test_missing_runs_and_logs_are_404(services: Services, client: TestClient,
                                       tmp_path: Path) -> None:
    run_id = _run(services, tmp_path)
    assert client.get("/runs/nope").status_code == 404
    assert client.get(f"/runs/{run_id}/logs/test").status_code == 404
    assert client.get("/runs/nope/logs/build").status_code == 404


def test_api_runs_flows_and_schedules(services: Services, client: TestClient,
                                      tmp_path: Path) -> None:
    run_id = _run(services, tmp_path)
    [run] = client.get("/api/runs").json()
    assert (run["id"], run["status"], run["failed_task"]) == (run_id, "failed", "build")
    assert client.get("/api/runs", params={"repo": "other/repo"}).json() == []
    [flow] = client.get("/api/flows", params={"repo": "acme/flows"}).json()
    assert flow["id"] == "tricky" and flow["triggers"][0]["timezone"] == "Europe/Paris"
    [schedule] = client.get("/api/schedules").json()
    assert (schedule["flow_id"], schedule["trigger_id"]) == ("tricky", "hourly")
    assert schedule["next_fires"][0] == "2026-03-01T14:00:00+01:00"  # in Paris time
