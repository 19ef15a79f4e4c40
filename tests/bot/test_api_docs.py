"""The API describes itself: OpenAPI at ``/api/openapi.json`` covering every ``/api``
route, and ``/api/docs`` listing it as a page (no CDN, no JavaScript needed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from tests.clock import FakeClock
from tests.fakes import TestClient, make_services


@pytest.fixture
def client(db_engine: Engine, tmp_path: Path) -> TestClient:
    services = make_services(db_engine, FakeClock(datetime(2026, 3, 1, tzinfo=UTC)),
                             data_dir=tmp_path)
    return TestClient(create_app(services.settings, services))


def _api_routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path) of every JSON API route the app serves, docs themselves aside."""
    app = client.app
    assert isinstance(app, FastAPI)
    routes = [r for r in iter_route_contexts(app.routes)
              if r.path and r.path.startswith("/api/")
              and r.path not in ("/api/openapi.json", "/api/docs")]
    return {(method, str(r.path)) for r in routes for method in r.methods or ()
            if method != "HEAD"}


def test_the_openapi_description_lists_every_api_route(client: TestClient) -> None:
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200
    schema = answer.json()
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "flowbot"
    listed = {(method.upper(), path) for path, item in schema["paths"].items()
              for method in item}
    routes = _api_routes(client)
    assert {("GET", "/api/runs"), ("GET", "/api/flows"), ("GET", "/api/schedules"),
            ("POST", "/api/flows/{owner}/{name}/{flow_id}/pause")} <= routes
    assert routes <= listed, routes - listed
    assert ("GET", "/healthz") in listed
    assert not [p for p in schema["paths"] if not (p.startswith("/api/") or p == "/healthz")]
    # every answer is described, the refusals too
    for path, item in schema["paths"].items():
        for method, op in item.items():
            assert all(r.get("description") for r in op["responses"].values()), (method, path)
    runs = schema["paths"]["/api/runs"]["get"]
    assert "newest first" in runs["responses"]["200"]["description"]
    assert "sign in" in runs["responses"]["401"]["description"]
    assert {p["name"] for p in runs["parameters"]} == {"repo", "flow", "limit"}


def test_the_docs_page_lists_the_endpoints_without_outside_assets(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<code>GET /api/runs</code>" in html
    assert "<code>POST /api/flows/{owner}/{name}/{flow_id}/resume</code>" in html
    assert "<code>GET /healthz</code>" in html
    assert 'href="/api/openapi.json"' in html and "Newest runs the reader may see" in html
    # everything the page loads comes from the bot itself
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)


def test_the_description_is_open_to_anyone(client: TestClient) -> None:
    outside = TestClient(client.app, client=("203.0.113.7", 50000))
    assert outside.get("/api/openapi.json").status_code == 200
    assert outside.get("/api/docs").status_code == 200
    assert outside.get("/api/runs").status_code == 403  # what the API holds is not
