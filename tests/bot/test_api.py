"""The JSON API against the real app and a real database: listings, and pause and
resume behind the bearer token (read-only without one)."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.services import Services
from bot.web.api import READ_ONLY
from runner.state.records import Trigger, TriggerType
from runner.validation.validate import validate_files
from tests.clock import FakeClock
from tests.fakes import TestClient, make_services
from tests.smalldisk import fill, small_disk_fixture  # noqa: F401  (the fixture)

TOKEN = "api-t0ken-for-tests"
PAUSE = "/api/flows/acme/flows/tricky/pause"
RESUME = "/api/flows/acme/flows/tricky/resume"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLOW = b"""id: tricky
triggers:
  - {id: hourly, type: schedule, cron: "@hourly", timezone: Europe/Paris}
tasks:
  - {id: build, image: "busybox:latest", commands: [echo hi]}
"""
TOOL = b"""id: nightly
triggers:
  - {id: night, type: schedule, cron: "30 2 * * *", timezone: UTC}
tasks:
  - {id: t, image: "busybox:latest", commands: ["true"]}
"""


def _services(engine: Engine, tmp_path: Path, token: str) -> Services:
    svc = make_services(engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)),
                        data_dir=tmp_path)
    svc.settings = replace(svc.settings, api_token=token)
    svc.registry.sync("acme/flows", "a" * 40, validate_files({"flows/t.yml": FLOW}).flows)
    svc.registry.sync("zeta/tools", "c" * 40, validate_files({"flows/n.yml": TOOL}).flows)
    return svc


@pytest.fixture
def services(db_engine: Engine, tmp_path: Path) -> Services:
    return _services(db_engine, tmp_path, TOKEN)


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services.settings, services))


def _schedule(client: TestClient, repo: str = "acme/flows") -> dict[str, Any]:
    [row] = client.get("/api/schedules", params={"repo": repo}).json()
    assert isinstance(row, dict)
    return row


def test_flows_of_every_repository_or_of_one(client: TestClient) -> None:
    listed = client.get("/api/flows").json()
    assert [(f["repo"], f["id"]) for f in listed] == [("acme/flows", "tricky"),
                                                      ("zeta/tools", "nightly")]
    [one] = client.get("/api/flows", params={"repo": "zeta/tools"}).json()
    assert one["id"] == "nightly" and one["commit"] == "c" * 40 and one["paused"] is False
    assert one["triggers"] == [{"id": "night", "cron": "30 2 * * *", "timezone": "UTC"}]
    assert client.get("/api/flows", params={"repo": "nobody/here"}).json() == []


def test_schedules_with_next_fire_times_state_and_last_run(client: TestClient) -> None:
    every = client.get("/api/schedules").json()
    assert [(s["repo"], s["flow_id"], s["trigger_id"]) for s in every] == [
        ("acme/flows", "tricky", "hourly"), ("zeta/tools", "nightly", "night")]
    paris = _schedule(client)
    assert paris["state"] == "active" and paris["timezone"] == "Europe/Paris"
    assert paris["next_fires"] == ["2026-03-01T14:00:00+01:00", "2026-03-01T15:00:00+01:00",
                                   "2026-03-01T16:00:00+01:00"]  # in Paris time
    assert (paris["last_fire_at"], paris["last_run_id"]) == (None, None)
    assert _schedule(client, "zeta/tools")["next_fires"][0] == "2026-03-02T02:30:00+00:00"


def test_runs_listing(services: Services, client: TestClient) -> None:
    registered = services.registry.get("acme/flows", "tricky")
    assert registered is not None
    run = services.store.create_run(registered.flow, repo="acme/flows", commit="a" * 40,
                                    trigger=Trigger(TriggerType.MANUAL, "octocat"),
                                    inputs={"day": "monday"})
    [listed] = client.get("/api/runs").json()
    assert (listed["id"], listed["status"], listed["inputs"]) == (run.id, "queued",
                                                                  {"day": "monday"})
    assert listed["trigger"] == {"type": "manual", "actor": "octocat", "scheduled_at": None}
    assert client.get("/api/runs", params={"repo": "zeta/tools"}).json() == []
    assert len(client.get("/api/runs", params={"flow": "tricky", "limit": 0}).json()) == 1


def test_pause_then_resume_records_missed_slots(services: Services, client: TestClient) -> None:
    paused = client.post(PAUSE, headers=AUTH)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert services.wake_scheduler.is_set()  # the scheduler re-reads its next fire time
    row = _schedule(client)
    assert (row["state"], row["next_fires"]) == ("paused", [])
    assert client.get("/api/flows", params={"repo": "acme/flows"}).json()[0]["paused"] is True
    assert _schedule(client, "zeta/tools")["state"] == "active"  # other flows go on
    services.wake_scheduler.clear()
    clock = services.clock
    assert isinstance(clock, FakeClock)
    clock.set(datetime(2026, 3, 1, 15, 30, tzinfo=UTC))  # 13:00, 14:00, 15:00 UTC missed
    resumed = client.post(RESUME, headers=AUTH)
    assert resumed.status_code == 200
    assert (resumed.json()["state"], resumed.json()["skipped"]) == ("active", 3)
    assert "3 slot(s) missed while paused" in resumed.json()["message"]
    assert services.wake_scheduler.is_set()
    row = _schedule(client)
    assert row["state"] == "active" and row["next_fires"][0] == "2026-03-01T17:00:00+01:00"
    again = client.post(RESUME, headers=AUTH).json()
    assert again["skipped"] == 0  # resuming an active flow changes nothing


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "},
])
def test_a_missing_or_wrong_token_is_401_and_changes_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    for path in (PAUSE, RESUME):
        answer = client.post(path, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in answer.text
    assert _schedule(client)["state"] == "active"


def test_without_a_token_setting_the_api_is_read_only(sqlite_engine: Engine,
                                                      tmp_path: Path) -> None:
    services = _services(sqlite_engine, tmp_path, token="")
    client = TestClient(create_app(services.settings, services))
    for headers in ({}, {"Authorization": "Bearer "}, AUTH):
        answer = client.post(PAUSE, headers=headers)
        assert (answer.status_code, answer.json()["message"]) == (403, READ_ONLY)
    assert client.post(RESUME).status_code == 403
    assert _schedule(client)["state"] == "active"
    assert not services.wake_scheduler.is_set()
    assert client.get("/api/flows").status_code == 200  # reads stay open


def test_an_unknown_flow_is_404_with_the_known_ids(client: TestClient) -> None:
    answer = client.post("/api/flows/acme/flows/trick/pause", headers=AUTH)
    assert answer.status_code == 404
    assert answer.json() == {"message": 'no flow with id "trick" in acme/flows '
                                        '(did you mean "tricky"?)', "known": ["tricky"]}
    answer = client.post("/api/flows/nobody/here/tricky/resume", headers=AUTH)
    assert (answer.status_code, answer.json()["known"]) == (404, [])


def test_the_token_never_appears_in_settings_repr(services: Services) -> None:
    assert TOKEN not in repr(services.settings)


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True}


def test_healthz_says_when_the_data_dir_is_full(sqlite_engine: Engine, small_disk: Path) -> None:
    """A real 8 MiB tmpfs as the data dir: reads still work, writes do not."""
    services = _services(sqlite_engine, small_disk, "")
    client = TestClient(create_app(services.settings, services))
    assert client.get("/healthz").json() == {"ok": True}
    filler = fill(small_disk / "filler")
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {
        "ok": False, "error": "data dir not writable",
        "reason": f"cannot write to the data dir {small_disk}: No space left on device"}
    filler.unlink()  # space returns
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert sorted(p.name for p in small_disk.iterdir()) == []  # no probe left behind
