"""Push sync: real-shaped push payloads through the real router."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.handlers import build_router
from bot.intake.router import Event
from bot.services import Services
from runner.scheduling.schedules import schedules
from tests.clock import FakeClock
from tests.fakes import FakeFlowSource, LocalGitHub, make_services, push_event

NIGHTLY = b"""id: nightly
triggers:
  - {id: night, type: schedule, cron: "0 3 * * *", timezone: Europe/Paris}
tasks:
  - {id: hello, image: "busybox:latest", commands: [echo hi]}
"""
OTHER = b"""id: other
triggers:
  - {id: hourly, type: schedule, cron: "@hourly"}
tasks:
  - {id: hello, image: "busybox:latest", commands: [echo other]}
"""


@pytest.fixture
def services(sqlite_engine: Engine) -> Services:
    svc = make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)))
    source = svc.repos
    assert isinstance(source, FakeFlowSource)
    source.commits["1" * 40] = {"flows/nightly.yml": NIGHTLY, "flows/other.yml": OTHER}
    source.commits["2" * 40] = {"flows/nightly.yml": NIGHTLY.replace(b"tasks:", b"bad: 1\ntasks:"),
                                "flows/other.yml": OTHER.replace(b"echo other", b"echo changed")}
    source.commits["3" * 40] = {"flows/other.yml": OTHER}
    return svc


def _push(services: Services, **kwargs: object) -> list[dict[str, object]]:
    build_router().dispatch(Event("push", push_event(**kwargs), "d"), services)  # type: ignore[arg-type]
    github = services.github
    assert isinstance(github, LocalGitHub)
    client = github.clients.get("acme/flows")
    return client.statuses if client else []


def _scheduled(services: Services) -> list[tuple[str, str]]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(schedules.c.flow_id, schedules.c.trigger_id)).all()
    return sorted((r[0], r[1]) for r in rows)


def test_push_to_default_branch_registers_flows_and_schedules(services: Services) -> None:
    statuses = _push(services, after="1" * 40)
    assert [(s["context"], s["state"]) for s in statuses] == [
        ("flowbot/sync", "pending"), ("flowbot/sync", "success")]
    assert statuses[-1]["description"] == "2 added, 0 changed, 0 removed, 0 unchanged"
    assert _scheduled(services) == [("nightly", "night"), ("other", "hourly")]


def test_invalid_file_keeps_its_last_valid_version_and_says_so(services: Services) -> None:
    _push(services, after="1" * 40)
    statuses = _push(services, after="2" * 40, before="1" * 40)
    assert statuses[-1]["state"] == "failure"
    description = str(statuses[-1]["description"])
    assert "kept last valid version of nightly" in description
    assert description.startswith("0 added, 1 changed, 0 removed")
    kept = services.registry.get("acme/flows", "nightly")
    assert kept is not None and kept.commit == "1" * 40
    assert _scheduled(services) == [("nightly", "night"), ("other", "hourly")]


def test_deleted_file_unschedules_its_flow_on_a_force_push(services: Services) -> None:
    _push(services, after="1" * 40)
    statuses = _push(services, after="3" * 40, before="1" * 40, forced=True)
    assert statuses[-1]["description"] == "0 added, 0 changed, 1 removed, 1 unchanged"
    assert _scheduled(services) == [("other", "hourly")]


@pytest.mark.parametrize("kwargs", [
    {"after": "1" * 40, "ref": "refs/heads/feature"},
    {"after": "1" * 40, "ref": "refs/tags/v1"},
    {"after": "0" * 40, "before": "1" * 40, "deleted": True},
])
def test_other_branches_tags_and_deletions_are_ignored(
    services: Services, kwargs: dict[str, object]
) -> None:
    assert _push(services, **kwargs) == []
    assert services.registry.list("acme/flows") == []


def test_a_flow_the_backend_cannot_honour_is_not_registered(services: Services) -> None:
    source = services.repos
    assert isinstance(source, FakeFlowSource)
    gpu = NIGHTLY.replace(b"tasks:", b"pool: gpu\ntasks:")  # the docker backend has no pools
    source.commits["4" * 40] = {"flows/nightly.yml": gpu, "flows/other.yml": OTHER}
    statuses = _push(services, after="4" * 40)
    assert statuses[-1]["state"] == "failure"
    assert "1 invalid file(s) not registered: flows/nightly.yml" in str(statuses[-1]["description"])
    assert services.registry.get("acme/flows", "nightly") is None
    assert _scheduled(services) == [("other", "hourly")]


def test_a_flow_over_the_operators_bounds_is_not_registered(services: Services) -> None:
    source = services.repos
    assert isinstance(source, FakeFlowSource)
    hungry = NIGHTLY.replace(b'commands: [echo hi]}', b'commands: [echo hi], resources: {cpus: 8}}')
    source.commits["5" * 40] = {"flows/nightly.yml": hungry, "flows/other.yml": OTHER}
    services.settings = replace(services.settings, task_max_cpus=2.0)  # docker applies it
    statuses = _push(services, after="5" * 40)
    assert statuses[-1]["state"] == "failure"
    assert "1 invalid file(s) not registered: flows/nightly.yml" in str(statuses[-1]["description"])
    assert services.registry.get("acme/flows", "nightly") is None
    assert _scheduled(services) == [("other", "hourly")]

    services.settings = replace(services.settings, backend="process")  # applies no bounds
    assert _push(services, after="5" * 40)[-1]["state"] == "success"
    assert services.registry.get("acme/flows", "nightly") is not None
