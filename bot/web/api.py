"""The JSON API: ``GET /api/flows``, ``/api/runs``, ``/api/schedules``, ``/healthz``,
and ``POST /api/flows/{owner}/{name}/{flow_id}/pause`` and ``.../resume``.

Reads show what the pages show, to the same readers (:mod:`bot.web.auth`): a
signed-in GitHub user sees the repositories they can read, the bearer token sees
all, and without GitHub sign-in only this machine (loopback) is answered. Writes
need ``Authorization: Bearer <token>`` with ``FLOWBOT_API_TOKEN``; without that
setting the API is read-only.

The API describes itself: OpenAPI 3 at ``/api/openapi.json`` (the ``/api`` routes
and ``/healthz`` only) and a page listing it at ``/api/docs``, drawn on the server
from that description (no JavaScript, nothing from a CDN). Both are open to all:
they say what the API offers, not what it holds.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select, text

from bot.services import Services
from bot.web import ui
from bot.web.auth import LOOPBACK_ONLY, SIGN_IN_NEEDED, Access, Viewer, token_ok
from runner.errors import FlowNotFound
from runner.scheduling.registry import RegisteredFlow, registered_flows
from runner.scheduling.schedule_view import schedule_rows
from runner.state.records import RunRecord
from runner.validation.diagnostics import did_you_mean

log = logging.getLogger(__name__)

READ_ONLY = "the API is read-only: set FLOWBOT_API_TOKEN"
BAD_TOKEN = "missing or wrong bearer token (Authorization: Bearer <FLOWBOT_API_TOKEN>)"
UNKNOWN_FLOW = 'no flow with id "{flow_id}" in {repo}{hint}'
PAUSED = "{repo} {flow_id}: schedules paused"
RESUMED = ("{repo} {flow_id}: schedules resumed; "
           "{count} slot(s) missed while paused recorded as skipped")
MAX_RUNS = 500
ENGINE_AWAY = "the Docker engine does not answer: runs wait in the queue"
DATA_DIR_FULL = "cannot write to the data dir {path}: {problem}"
_PROBE = b"\0" * 4096  # a page: a full disk refuses it
API_DESCRIPTION = ("flowbot's JSON API. Reads need a GitHub sign-in session, "
                   "`Authorization: Bearer <FLOWBOT_API_TOKEN>`, or (without sign-in "
                   "configured) a request from this machine; writes need the bearer token.")
# what each kind of route may answer besides 200, for the OpenAPI description
READ_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in (with GitHub sign-in configured) and no valid "
                         "bearer token: sign in at /login or send the token"},
    403: {"description": "GitHub sign-in not configured and the request is not from "
                         "this machine"},
}
WRITE_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong bearer token"},
    403: {"description": "the API is read-only: FLOWBOT_API_TOKEN is not set"},
    404: {"description": "no such flow in the repository (did-you-mean in `known`)"},
}


def data_dir_problem(data_dir: Path) -> str | None:
    """Why the data dir (database file, logs, workspaces) refuses a small write, or None.

    A full disk lets reads through, so ``SELECT 1`` alone would call it healthy
    while every run and delivery fails to record anything.
    """
    probe = data_dir / f".healthz-{os.getpid()}-{threading.get_ident()}"
    try:
        with probe.open("wb") as f:
            f.write(_PROBE)
            f.flush()  # the filesystem reserves the space now, or refuses it
    except OSError as exc:
        return DATA_DIR_FULL.format(path=data_dir, problem=exc.strerror or exc)
    finally:
        probe.unlink(missing_ok=True)
    return None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id, "repo": run.repo, "flow_id": run.flow_id, "commit": run.commit,
        "status": str(run.status), "error": run.error, "failed_task": run.failed_task,
        "trigger": {"type": str(run.trigger.type), "actor": run.trigger.actor,
                    "scheduled_at": _iso(run.trigger.scheduled_at)},
        "inputs": run.inputs, "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
    }


def flow_json(repo: str, registered: RegisteredFlow) -> dict[str, Any]:
    flow = registered.flow
    return {
        "repo": repo, "id": flow.id, "path": registered.path, "commit": registered.commit,
        "digest": registered.digest, "paused": registered.paused,
        "description": flow.description,
        "triggers": [{"id": t.id, "cron": t.cron, "timezone": t.timezone} for t in flow.triggers],
    }


def registered_repos(services: Services) -> list[str]:
    """Every repository with at least one registered flow, sorted."""
    query = select(registered_flows.c.repo).distinct().order_by(registered_flows.c.repo)
    with services.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def _reply(status: int, message: str, **more: Any) -> JSONResponse:
    return JSONResponse({"message": message, **more}, status_code=status)


def _refusal(services: Services, request: Request) -> JSONResponse | None:
    """Why a write is refused (403 read-only, 401 bad token), or None to go ahead."""
    expected = services.settings.api_token
    if not expected:
        return _reply(403, READ_ONLY)
    if not token_ok(expected, request.headers.get("authorization")):
        return JSONResponse({"message": BAD_TOKEN}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="flowbot"'})
    return None


def _unknown(repo: str, exc: FlowNotFound) -> JSONResponse:
    hint = did_you_mean(exc.flow_id, exc.known)
    return _reply(404, UNKNOWN_FLOW.format(flow_id=exc.flow_id, repo=repo, hint=hint),
                  known=exc.known)


def api_router(services: Services, access: Access) -> APIRouter:
    """The JSON API over ``services``: reads (behind ``access``), schedule writes and
    the health check."""
    router = APIRouter()
    _read_routes(router, services, access)
    _pause_routes(router, services)
    _health_route(router, services)
    _docs_routes(router)
    return router


def reader(access: Access, request: Request) -> Viewer | JSONResponse:
    """Who reads, or the refusal: 401 to sign in (or send the token), 403 off-machine
    without sign-in configured."""
    viewer = access.viewer(request.scope, request.scope.get("session"))
    if viewer is not None:
        return viewer
    if access.oauth:
        return JSONResponse({"message": SIGN_IN_NEEDED}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="flowbot"'})
    return _reply(403, LOOPBACK_ONLY)


def _runs_seen(services: Services, viewer: Viewer, repo: str | None, flow: str | None,
               limit: int) -> list[RunRecord]:
    """Newest runs ``viewer`` may read: one query per readable repository, merged."""
    if repo is not None or viewer.repos is None:
        if repo is not None and not viewer.sees(repo):
            return []
        return services.store.list_runs(repo=repo, flow_id=flow, limit=limit)
    found = [run for name in sorted(viewer.repos)
             for run in services.store.list_runs(repo=name, flow_id=flow, limit=limit)]
    return sorted(found, key=lambda run: run.created_at, reverse=True)[:limit]


def _read_routes(router: APIRouter, services: Services, access: Access) -> None:
    """``GET /api/runs``, ``/api/flows`` and ``/api/schedules``: of the repositories
    the reader may read."""

    @router.get("/api/runs", tags=["reads"], responses=READ_REFUSALS,
                summary="Newest runs the reader may see",
                response_description="Runs, newest first: id, repo, flow_id, commit, status, "
                                     "error, failed_task, trigger, inputs and times (ISO 8601)")
    def api_runs(request: Request, repo: str | None = None, flow: str | None = None,
                 limit: int = 50) -> Response:
        viewer = reader(access, request)
        if isinstance(viewer, Response):
            return viewer
        found = _runs_seen(services, viewer, repo, flow, max(1, min(limit, MAX_RUNS)))
        return JSONResponse([run_json(r) for r in found])

    @router.get("/api/flows", tags=["reads"], responses=READ_REFUSALS,
                summary="Registered flows of the repositories the reader may see",
                response_description="Flows: repo, id, path, commit, digest, paused, "
                                     "description and triggers (id, cron, timezone)")
    def api_flows(request: Request, repo: str | None = None) -> Response:
        viewer = reader(access, request)
        if isinstance(viewer, Response):
            return viewer
        repos = [repo] if repo is not None else registered_repos(services)
        return JSONResponse([flow_json(name, registered) for name in viewer.visible(repos)
                             for registered in services.registry.list(name)])

    @router.get("/api/schedules", tags=["reads"], responses=READ_REFUSALS,
                summary="Every schedule of the repositories the reader may see",
                response_description="Schedules with their state, next fires and last fire")
    def api_schedules(request: Request, repo: str | None = None) -> Response:
        viewer = reader(access, request)
        if isinstance(viewer, Response):
            return viewer
        return JSONResponse([row for row in schedule_rows(services.schedules, repo)
                             if viewer.sees(row["repo"])])


def _pause_routes(router: APIRouter, services: Services) -> None:
    """``POST .../pause`` and ``.../resume`` of a flow's schedules: bearer token only."""

    @router.post("/api/flows/{owner}/{name}/{flow_id}/pause", tags=["writes"],
                 responses=WRITE_REFUSALS, summary="Pause a flow's schedules (bearer token)",
                 response_description="Paused: message, repo, flow_id, state")
    def api_pause(owner: str, name: str, flow_id: str, request: Request) -> Response:
        repo = f"{owner}/{name}"
        refused = _refusal(services, request)
        if refused is not None:
            return refused
        try:
            services.schedules.pause(repo, flow_id)
        except FlowNotFound as exc:
            return _unknown(repo, exc)
        log.info("flow paused through the API", extra={"repo": repo, "flow": flow_id})
        return _reply(200, PAUSED.format(repo=repo, flow_id=flow_id),
                      repo=repo, flow_id=flow_id, state="paused")

    @router.post("/api/flows/{owner}/{name}/{flow_id}/resume", tags=["writes"],
                 responses=WRITE_REFUSALS, summary="Resume a flow's schedules (bearer token)",
                 response_description="Resumed: message, repo, flow_id, state, and how many "
                                      "slots missed while paused were recorded as skipped")
    def api_resume(owner: str, name: str, flow_id: str, request: Request) -> Response:
        repo = f"{owner}/{name}"
        refused = _refusal(services, request)
        if refused is not None:
            return refused
        try:
            skipped = services.schedules.resume(repo, flow_id)
        except FlowNotFound as exc:
            return _unknown(repo, exc)
        log.info("flow resumed through the API", extra={"repo": repo, "flow": flow_id})
        return _reply(200, RESUMED.format(repo=repo, flow_id=flow_id, count=skipped),
                      repo=repo, flow_id=flow_id, state="active", skipped=skipped)


def _health_route(router: APIRouter, services: Services) -> None:
    """``GET /healthz``: 503 when the database or the data dir fails, or this replica
    cannot renew its lease (its heartbeat cannot write to the database)."""

    @router.get("/healthz", tags=["health"], summary="Health of the database and data dir",
                response_description="ok, this replica's id and how many replicas are live "
                                     "(engine: a note while Docker does not answer)",
                responses={503: {"description": "the database or the data dir fails, or "
                                                "this replica cannot renew its lease"}})
    def healthz() -> Response:
        try:
            with services.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not healthy"
            return JSONResponse({"ok": False, "error": type(exc).__name__}, status_code=503)
        problem = data_dir_problem(services.settings.data_dir)
        if problem is not None:
            return JSONResponse({"ok": False, "error": "data dir not writable",
                                 "reason": problem}, status_code=503)
        lease = None if services.replicas is None else services.replicas.lease_problem()
        if lease is not None:  # reads may work while writes fail: take this replica out
            return JSONResponse({"ok": False, "error": "lease not renewed",
                                 "reason": lease}, status_code=503)
        answer: dict[str, Any] = {"ok": True, **_replicas(services)}
        if getattr(services.runs, "away", False):  # validation still works: not a 503
            answer["engine"] = ENGINE_AWAY
        return JSONResponse(answer)


def _replicas(services: Services) -> dict[str, Any]:
    """This replica's id and how many replicas hold a lease (none without replicas)."""
    if services.replicas is None:
        return {}  # tests and tools that run no replica
    return {"replica": services.replicas.id, "replicas": len(services.replicas.live())}


def described(path: str) -> bool:
    """True for the paths the OpenAPI description covers: ``/api/…`` and ``/healthz``."""
    return path.startswith("/api/") or path == "/healthz"


def api_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI description of ``app``'s API routes (pages and sign-in left out)."""
    schema = get_openapi(title=app.title, version=app.version, description=API_DESCRIPTION,
                         routes=app.routes)
    schema["paths"] = {path: item for path, item in schema.get("paths", {}).items()
                       if described(path)}
    return schema


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation of ``schema`` as the docs page lists it."""
    return [{"method": method.upper(), "path": path, "summary": op.get("summary", ""),
             "params": [{"name": p["name"], "where": p["in"], "required": p.get("required"),
                         "type": _type(p.get("schema", {}))}
                        for p in op.get("parameters", [])],
             "responses": sorted((code, r.get("description", ""))
                                 for code, r in op.get("responses", {}).items())}
            for path, item in schema.get("paths", {}).items() for method, op in item.items()]


def _type(schema: dict[str, Any]) -> str:
    """A parameter's type in a word (``str | None`` is ``anyOf`` string and null)."""
    kinds = [schema.get("type")] + [alt.get("type") for alt in schema.get("anyOf", [])]
    return next((str(k) for k in kinds if k and k != "null"), "")


def _docs_routes(router: APIRouter) -> None:
    """``GET /api/openapi.json`` and ``GET /api/docs`` (a page listing it)."""
    @router.get("/api/openapi.json", include_in_schema=False)
    def openapi_json(request: Request) -> Response:
        return JSONResponse(api_schema(request.app))

    @router.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def api_docs(request: Request) -> Response:
        schema = api_schema(request.app)
        return ui.render("api_docs.html", None, section=None, info=schema["info"],
                         operations=_operations(schema))
