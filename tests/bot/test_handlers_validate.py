"""PR validation: real-shaped pull_request payloads through the real router."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from bot.handlers import build_router
from bot.handlers.render import VALIDATE_MARKER
from bot.intake.deliveries import DeliveryStatus
from bot.intake.router import Event
from bot.intake.worker import drain
from bot.services import Services
from runner.validation.validate import validate_files
from tests.bot.delivery_rows import find_delivery
from tests.clock import FakeClock
from tests.fakes import FakeFlowSource, LocalGitHub, make_services, pull_request_event

GOOD = b"""id: nightly
triggers:
  - id: night
    type: schedule
    cron: "0 3 * * *"
    timezone: Europe/Paris
tasks:
  - id: hello
    image: busybox:latest
    commands: [echo hi]
"""
BROKEN = b"""id: broken
tasks:
  - id: t
    image: busybox:latest
    comands: [echo hi]
"""
FIXED = BROKEN.replace(b"comands", b"commands")


@pytest.fixture
def services(sqlite_engine: Engine) -> Services:
    return make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)))


def _dispatch(services: Services, payload: dict[str, object], event: str = "pull_request") -> int:
    return build_router().dispatch(Event(event, payload, "delivery-1"), services)


def _github(services: Services) -> LocalGitHub:
    assert isinstance(services.github, LocalGitHub)
    return services.github


def _source(services: Services) -> FakeFlowSource:
    assert isinstance(services.repos, FakeFlowSource)
    return services.repos


def test_broken_flow_fails_then_fix_edits_the_same_comment(services: Services) -> None:
    _source(services).commits["a" * 40] = {"flows/nightly.yml": GOOD, "flows/broken.yml": BROKEN}
    _source(services).commits["c" * 40] = {"flows/nightly.yml": GOOD, "flows/broken.yml": FIXED}
    _dispatch(services, pull_request_event("opened", 12, "a" * 40))
    client = _github(services).clients["acme/flows"]
    states = [(s["sha"][:1], s["state"], s["description"]) for s in client.statuses]
    assert states == [("a", "pending", "Validating flows/*.yml…"),
                      ("a", "failure", "1 of 2 flows invalid")]
    [body] = client.bodies()
    assert body.startswith(VALIDATE_MARKER)
    assert "`flows/broken.yml:5:5` error:" in body and "comands" in body
    assert "❌ invalid" in body and "✅ valid" in body

    _dispatch(services, pull_request_event("synchronize", 12, "c" * 40))
    assert client.statuses[-1]["state"] == "success"
    assert client.statuses[-1]["description"] == "2 flows valid"
    [comment] = client.comments.values()
    assert comment["edits"] == 1 and "Problems" not in comment["body"]


def test_plan_and_next_fire_times_against_the_registry(services: Services) -> None:
    report = validate_files({"flows/broken.yml": FIXED})
    services.registry.sync("acme/flows", "0" * 40, report.flows)
    _source(services).commits["a" * 40] = {"flows/nightly.yml": GOOD}
    _dispatch(services, pull_request_event("opened", 3, "a" * 40))
    [body] = _github(services).clients["acme/flows"].bodies()
    assert "- added: `nightly`" in body and "- removed: `broken`" in body
    # 03:00 in Paris (CET, UTC+1) after 2026-03-01 12:00 UTC; the DST change on 29 March
    assert "`nightly` / `night` (`0 3 * * *`, Europe/Paris): 2026-03-02 03:00 CET" in body


def test_fork_pr_is_read_from_the_fork_and_only_validated(services: Services) -> None:
    _source(services).commits["f" * 40] = {"flows/nightly.yml": GOOD}
    _dispatch(services, pull_request_event("opened", 4, "f" * 40, head_repo="mallory/flows"))
    assert _source(services).mirrored == [("mallory/flows",
                                           "https://github.com/mallory/flows.git")]
    assert services.store.list_runs() == []


def test_ignored_actions_and_repos(services: Services) -> None:
    assert _dispatch(services, pull_request_event("closed", 4, "a" * 40)) == 0
    services.settings = services.settings.__class__(repos=("other/*",), webhook_secret="x")
    _dispatch(services, pull_request_event("opened", 4, "a" * 40))
    assert _github(services).clients == {}


def test_a_head_superseded_by_a_newer_push_is_not_validated(services: Services) -> None:
    """A backlog of pushes to one PR: only its newest head is validated; another PR,
    and a head whose newer delivery failed, still are."""
    source = _source(services)
    for sha in ("a", "b", "c", "d"):
        source.commits[sha * 40] = {"flows/nightly.yml": GOOD}
    clock = services.clock
    assert isinstance(clock, FakeClock)
    deliveries = [("p1", "opened", 12, "a"), ("p2", "synchronize", 12, "b"),
                  ("p3", "synchronize", 12, "c"), ("q1", "opened", 13, "d")]
    for delivery_id, action, number, sha in deliveries:
        clock.advance(1)
        payload = pull_request_event(action, number, sha * 40)
        services.deliveries.record(delivery_id, "pull_request", json.dumps(payload).encode(),
                                   payload)
    router = build_router()
    assert drain(services.deliveries, lambda e: router.dispatch(e, services)) == 4
    client = _github(services).clients["acme/flows"]
    validated = sorted({s["sha"][:1] for s in client.statuses})
    assert validated == ["c", "d"]
    assert all(find_delivery(services.deliveries, d).status is DeliveryStatus.DONE  # type: ignore[union-attr]
               for d in ("p1", "p2", "p3", "q1"))
