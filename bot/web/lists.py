"""``/runs`` and ``/schedules``: every run and every schedule a viewer may read.

``/runs`` is a plain GET form (repository, flow, status, trigger type, created
from/to), newest first, paged by a keyset cursor ``?before=<created_at>,<id>``
(the last run shown): each page is one index range of the run store
(:meth:`runner.state.store.RunStore.runs_page`), never an OFFSET. Unreadable
repositories are left out in the query itself, so they never fill or leak
into a page. ``/schedules`` lists each schedule's state, next fires, last fire
and run, and the latest slots recorded as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.requests import Request

from bot.services import Services
from bot.web import ui
from bot.web.api import registered_repos
from bot.web.auth import Access, Viewer
from bot.web.timefmt import shown
from runner.scheduling.schedule_store import Schedule
from runner.scheduling.schedule_view import state_of, upcoming
from runner.state.records import RunRecord, Status, TriggerType

PAGE_SIZE = 50  # runs per page
SKIPPED_SHOWN = 50  # latest skipped slots on /schedules
BAD_CHOICE = "{field}: {value!r} is not one of {choices}"
BAD_DATE = "{field}: {value!r} is not a date (YYYY-MM-DD)"
BAD_CURSOR = "before: {value!r} is not a page cursor; start again from the newest runs"
FILTERS = ("repo", "flow", "status", "trigger", "since", "until")


@dataclass(frozen=True)
class RunFilter:
    """The ``/runs`` query, checked; ``form`` echoes what was asked."""

    form: dict[str, str]
    status: Status | None = None
    trigger: TriggerType | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive: the day after the ``until`` date
    before: tuple[datetime, str] | None = None


def _choice(field: str, value: str, kind: type[Status] | type[TriggerType]) -> Any:
    if not value:
        return None  # any
    try:
        return kind(value)
    except ValueError:
        raise ValueError(BAD_CHOICE.format(field=field, value=value,
                                           choices=", ".join(kind))) from None


def _day(field: str, value: str, after: int = 0) -> datetime | None:
    if not value:
        return None  # unbounded
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(BAD_DATE.format(field=field, value=value)) from None
    return datetime.combine(day + timedelta(days=after), datetime.min.time(), UTC)


def cursor(run: RunRecord) -> str:
    """The keyset cursor after ``run``: ``<created_at UTC>,<id>``."""
    return f"{run.created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ},{run.id}"


def _cursor(value: str) -> tuple[datetime, str] | None:
    if not value:
        return None  # the first page
    moment, _, run_id = value.rpartition(",")
    try:
        at = datetime.fromisoformat(moment)
    except ValueError:
        raise ValueError(BAD_CURSOR.format(value=value)) from None
    if not run_id or at.tzinfo is None:
        raise ValueError(BAD_CURSOR.format(value=value))
    return at.astimezone(UTC), run_id


def run_filter(params: Any) -> RunFilter:
    """The filter of a ``/runs`` request's query; ValueError naming the bad field."""
    form = {name: str(params.get(name, "")).strip() for name in FILTERS}
    return RunFilter(form, _choice("status", form["status"], Status),
                     _choice("trigger", form["trigger"], TriggerType),
                     _day("since", form["since"]), _day("until", form["until"], after=1),
                     _cursor(str(params.get("before", "")).strip()))


def _repos(viewer: Viewer, repo: str) -> list[str] | None:
    """The repositories to list: the chosen one if readable, else every readable one."""
    if repo:
        return [repo] if viewer.sees(repo) else []
    return None if viewer.repos is None else sorted(viewer.repos)


def _run_line(run: RunRecord, now: datetime) -> dict[str, Any]:
    took = (run.finished_at - run.started_at).total_seconds() \
        if run.started_at and run.finished_at else None
    return {"id": run.id, "repo": run.repo, "flow_id": run.flow_id, "status": str(run.status),
            "trigger": str(run.trigger.type), "actor": run.trigger.actor,
            "created": shown(run.created_at, now),
            "duration": "–" if took is None else f"{took:.1f}s"}


def runs_page(services: Services, viewer: Viewer, request: Request) -> Response:
    """``/runs``: the form, one page of runs and the link to the next (older) page."""
    options: dict[str, Any] = {"repos": viewer.visible(registered_repos(services)),
               "statuses": list(Status), "triggers": list(TriggerType)}
    try:
        chosen = run_filter(request.query_params)
    except ValueError as exc:
        form = {name: request.query_params.get(name, "") for name in FILTERS}
        return ui.render("runs.html", viewer, 400, section="/runs", form=form, error=str(exc),
                         runs=[], older=None, paged=False, **options)
    form = chosen.form
    found = services.store.runs_page(
        repos=_repos(viewer, form["repo"]), flow_id=form["flow"] or None, status=chosen.status,
        trigger_type=chosen.trigger, since=chosen.since, until=chosen.until,
        before=chosen.before, limit=PAGE_SIZE + 1)
    shown, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    kept = {k: v for k, v in form.items() if v}
    older = f"/runs?{urlencode({**kept, 'before': cursor(shown[-1])})}" if more else None
    now = services.clock.now()
    return ui.render("runs.html", viewer, section="/runs", form=form, error=None,
                     runs=[_run_line(run, now) for run in shown], older=older,
                     paged=chosen.before is not None,
                     newest=f"/runs?{urlencode(kept)}" if kept else "/runs", **options)


def _schedule_line(row: Schedule, now: datetime) -> dict[str, Any]:
    return {"repo": row.repo, "flow_id": row.flow_id, "trigger_id": row.trigger_id,
            "cron": row.cron, "timezone": row.timezone, "state": str(state_of(row)),
            "next": [shown(moment, now, row.timezone) for moment in upcoming(row)],
            "last": shown(row.last_fire_at, now, row.timezone), "last_run": row.last_run_id}


def schedules_page(services: Services, viewer: Viewer) -> Response:
    """``/schedules``: every schedule of readable repositories, and skipped slots."""
    now = services.clock.now()
    rows = [row for row in services.schedules.list() if viewer.sees(row.repo)]
    skipped = services.schedules.skipped(
        None if viewer.repos is None else viewer.repos, SKIPPED_SHOWN)
    return ui.render(
        "schedules.html", viewer, section="/schedules",
        schedules=[_schedule_line(row, now) for row in rows],
        skipped=[{"repo": f.repo, "flow_id": f.flow_id, "trigger_id": f.trigger_id,
                  "slot": shown(f.slot_at, now), "reason": f.reason} for f in skipped])


def lists_router(services: Services, access: Access) -> APIRouter:
    """``GET /runs`` and ``GET /schedules``, behind ``access``."""
    router = APIRouter()

    @router.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        return runs_page(services, viewer, request)

    @router.get("/schedules", response_class=HTMLResponse)
    def schedules(request: Request) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        return schedules_page(services, viewer)

    return router
