"""``/replicas`` and ``GET /api/replicas``: the operators' view of the replicas.

Every live replica (id, host, pid, when it started, its last heartbeat), the
runs it executes now (``runs.owner``) and the replicas dead in the last day
(stopped, or silent past their lease) with the replica that adopted their work.
Heartbeats are measured by the database's clock, as liveness is
(:class:`runner.state.replicas.ReplicaRegistry`), never a process's own.

Replicas belong to no repository, so any viewer who may see the pages sees them;
a replica's runs are listed only from repositories the viewer can read, in the
query itself (as ``/runs`` does), so neither their names nor their count leak.
The page works without JavaScript; with it, htmx reloads the list every
:data:`REFRESH_SECONDS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import Request

from bot.services import Services
from bot.web import ui
from bot.web.api import READ_REFUSALS, reader
from bot.web.auth import Access, Viewer
from bot.web.timefmt import shown
from runner.state.records import RunRecord
from runner.state.replicas import DeadReplica, Replica, ReplicaRegistry

REFRESH_SECONDS = 5  # htmx polls the page this often


def _registry(services: Services) -> ReplicaRegistry:
    """This process's registry, or (tools and tests that run no replica) a reader
    of the same table with the configured lease; it registers nothing."""
    if services.replicas is not None:
        return services.replicas
    settings = services.settings
    return ReplicaRegistry(services.engine, heartbeat_seconds=settings.replica_heartbeat_seconds,
                           lease_seconds=settings.replica_lease_seconds)


def _run(run: RunRecord) -> dict[str, Any]:
    return {"id": run.id, "repo": run.repo, "flow_id": run.flow_id}


def replicas_view(services: Services, viewer: Viewer) -> dict[str, Any]:
    """The live and recently dead replicas, each live one with the runs it executes
    of the repositories ``viewer`` reads; times as datetimes (database clock)."""
    registry = _registry(services)
    live, dead = registry.live(), registry.recently_dead()
    running = services.store.running_of([r.id for r in live], viewer.repos)
    return {"now": registry.database_now(),
            "this": services.replicas.id if services.replicas is not None else None,
            "live": [(replica, [_run(run) for run in running if run.owner == replica.id])
                     for replica in live],
            "dead": dead}


def _why(replica: DeadReplica) -> str:
    return "stopped" if replica.stopped_at is not None else "lease expired"


def _page_lines(view: dict[str, Any]) -> dict[str, Any]:
    """The view as the template shows it: each time relative and exact (UTC)."""
    now: datetime = view["now"]
    live = [{"id": r.id, "host": r.host, "pid": r.pid, "this": r.id == view["this"],
             "started": shown(r.started_at, now), "heartbeat": shown(r.heartbeat_at, now),
             "runs": runs} for r, runs in view["live"]]
    dead = [{"id": r.id, "host": r.host, "pid": r.pid, "why": _why(r),
             "started": shown(r.started_at, now), "heartbeat": shown(r.heartbeat_at, now),
             "stopped": shown(r.stopped_at, now), "adopted_by": r.adopted_by}
            for r in view["dead"]]
    return {"live": live, "dead": dead, "refresh": REFRESH_SECONDS}


def _json(view: dict[str, Any]) -> dict[str, Any]:
    def replica(r: Replica | DeadReplica) -> dict[str, Any]:
        return {"id": r.id, "host": r.host, "pid": r.pid,
                "started_at": r.started_at.isoformat(),
                "heartbeat_at": r.heartbeat_at.isoformat()}

    return {"now": view["now"].isoformat(), "this": view["this"],
            "live": [{**replica(r), "runs": runs} for r, runs in view["live"]],
            "dead": [{**replica(r), "why": _why(r), "adopted_by": r.adopted_by,
                      "stopped_at": None if r.stopped_at is None else r.stopped_at.isoformat()}
                     for r in view["dead"]]}


def replicas_router(services: Services, access: Access) -> APIRouter:
    """``GET /replicas`` (the page) and ``GET /api/replicas`` (JSON), behind ``access``."""
    router = APIRouter()

    @router.get("/replicas", response_class=HTMLResponse)
    def replicas_page(request: Request) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        return ui.render("replicas.html", viewer, section="/replicas",
                         **_page_lines(replicas_view(services, viewer)))

    @router.get("/api/replicas", tags=["reads"], responses=READ_REFUSALS,
                summary="Live replicas, the runs each executes, and the recently dead",
                response_description="now (database clock), this (the answering replica's "
                                     "id), live: id, host, pid, started_at, heartbeat_at and "
                                     "runs (id, repo, flow_id) of readable repositories; dead "
                                     "(last day): the same times, why (stopped or lease "
                                     "expired), stopped_at and adopted_by")
    def api_replicas(request: Request) -> Response:
        viewer = reader(access, request)
        if isinstance(viewer, Response):
            return viewer
        return JSONResponse(_json(replicas_view(services, viewer)))

    return router
