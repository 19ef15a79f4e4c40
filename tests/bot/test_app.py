import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.handlers import build_router
from bot.intake.app import MAX_BODY, create_app, sign
from bot.intake.deliveries import DeliveryStatus
from bot.intake.router import Event
from bot.intake.worker import drain
from bot.services import Services
from bot.settings import Settings
from runner.errors import ConfigError
from tests.bot.delivery_rows import delivery_count, find_delivery
from tests.clock import FakeClock
from tests.fakes import (
    FakeFlowSource,
    LocalGitHub,
    TestClient,
    make_services,
    ping_event,
    pull_request_event,
    push_event,
)

SECRET = "s3cret"


@pytest.fixture
def services(sqlite_engine: Engine, tmp_path: Path) -> Services:
    return make_services(sqlite_engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)),
                         data_dir=tmp_path)


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services.settings, services))


def _post(client: TestClient, payload: object, *, delivery: str = "d-1", event: str = "push",
          secret: str = SECRET, body: bytes | None = None) -> tuple[int, str]:
    raw = body if body is not None else json.dumps(payload).encode()
    response = client.post("/webhook", content=raw, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, raw), "Content-Type": "application/json",
    })
    return response.status_code, response.json()["message"]


def test_refuses_to_start_without_a_secret(services: Services) -> None:
    with pytest.raises(ConfigError, match="FLOWBOT_WEBHOOK_SECRET"):
        create_app(Settings(), services)


def test_signed_delivery_is_recorded_and_accepted(client: TestClient, services: Services) -> None:
    woken: list[bool] = []
    services.on_delivery = lambda: woken.append(True)
    assert _post(client, push_event("a" * 40)) == (202, "accepted")
    delivery = find_delivery(services.deliveries, "d-1")
    assert delivery is not None and delivery.event == "push" and woken == [True]


def test_redelivery_is_acknowledged_once(client: TestClient, services: Services) -> None:
    assert _post(client, ping_event(), event="ping")[0] == 202
    assert _post(client, ping_event(), event="ping") == (200, "duplicate")
    assert delivery_count(services.deliveries) == 1


@pytest.mark.parametrize("secret", ["wrong", None])
def test_bad_or_missing_signature_is_401_and_nothing_else(
    client: TestClient, services: Services, secret: str | None
) -> None:
    raw = json.dumps(ping_event()).encode()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2"}
    if secret:
        headers["X-Hub-Signature-256"] = sign(secret, raw)
    response = client.post("/webhook", content=raw, headers=headers)
    assert response.status_code == 401
    assert delivery_count(services.deliveries) == 0


def test_malformed_json_is_400(client: TestClient, services: Services) -> None:
    assert _post(client, None, body=b"{not json")[0] == 400
    assert _post(client, None, body=b"[1, 2]")[0] == 400
    assert delivery_count(services.deliveries) == 0


def test_oversized_body_is_refused(client: TestClient, services: Services) -> None:
    raw = b" " * (MAX_BODY + 1)
    assert _post(client, None, body=raw)[0] == 413
    assert delivery_count(services.deliveries) == 0


def test_healthz_answers_when_the_database_does(client: TestClient, services: Services) -> None:
    assert client.get("/healthz").status_code == 200
    services.engine.dispose()
    Path(str(services.engine.url.database)).unlink()
    Path(str(services.engine.url.database)).mkdir()  # a directory is no database
    assert client.get("/healthz").status_code == 503


def test_body_that_is_not_utf8_is_400(client: TestClient, services: Services) -> None:
    assert _post(client, None, body=b'{"zen": "\xff"}') == (400, "body is not JSON")
    assert delivery_count(services.deliveries) == 0


def test_missing_delivery_id_is_400(client: TestClient, services: Services) -> None:
    raw = json.dumps(ping_event()).encode()
    response = client.post("/webhook", content=raw, headers={
        "X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(SECRET, raw)})
    assert response.status_code == 400
    assert "X-GitHub-Delivery" in response.json()["message"]
    assert delivery_count(services.deliveries) == 0


def test_webhook_takes_only_post(client: TestClient) -> None:
    assert client.get("/webhook").status_code == 405


def test_body_in_chunks_is_verified_whole(client: TestClient, services: Services) -> None:
    raw = json.dumps(ping_event()).encode()
    chunks = iter([raw[:10], raw[10:]])
    response = client.post("/webhook", content=chunks, headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-9",
        "X-Hub-Signature-256": sign(SECRET, raw)})
    assert response.status_code == 202
    assert find_delivery(services.deliveries, "d-9") is not None


def test_redelivery_of_a_failed_delivery_is_processed_again(client: TestClient,
                                                             services: Services) -> None:
    """GitHub's "Redeliver" (same X-GitHub-Delivery id) after the delivery failed for
    good: it is accepted, queued again and processed."""
    sha = "e" * 40
    payload = pull_request_event("opened", 5, sha)
    router = build_router()

    def dispatch(event: Event) -> None:
        router.dispatch(event, services)

    assert _post(client, payload, delivery="pr-5", event="pull_request") == (202, "accepted")
    assert drain(services.deliveries, dispatch) == 1  # the commit cannot be read: a bug
    failed = find_delivery(services.deliveries, "pr-5")
    assert failed is not None and failed.status is DeliveryStatus.FAILED

    assert isinstance(services.repos, FakeFlowSource)
    services.repos.commits[sha] = {"flows/a.yml": b"id: a\ntasks: [{id: t, image: x, "
                                                 b"commands: [echo]}]\n"}  # fixed
    woken: list[bool] = []
    services.on_delivery = lambda: woken.append(True)
    assert _post(client, payload, delivery="pr-5", event="pull_request") == (202, "accepted")
    assert woken == [True]
    assert drain(services.deliveries, dispatch) == 1
    done = find_delivery(services.deliveries, "pr-5")
    assert done is not None and done.status is DeliveryStatus.DONE
    assert isinstance(services.github, LocalGitHub)
    assert services.github.clients["acme/flows"].statuses[-1]["state"] == "success"
    assert _post(client, payload, delivery="pr-5", event="pull_request") == (200, "duplicate")
