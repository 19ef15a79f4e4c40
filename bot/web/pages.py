"""Pages: ``/`` (:mod:`bot.web.home`), ``/runs/<id>`` and ``/runs/<id>/logs/<task>``
on the base layout (:mod:`bot.web.ui`); :func:`pages_router` also carries the JSON
API of :mod:`bot.web.api`. Every page passes :class:`bot.web.auth.Access` first.

Logs are shown only from where the runner writes them, masked
(``<data_dir>/logs/<run>/<task>.<attempt>.log``); everything shown is HTML-escaped.
A run page shows at most the last :data:`PAGE_TAIL_BYTES` of each log, read
from the end of the file; the whole log is served from the file in chunks.
Neither reads a log whole into memory, whatever its size.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.requests import Request

from bot.services import Services
from bot.web import ui
from bot.web.api import api_router
from bot.web.auth import Access, Viewer
from bot.web.home import repo_blocks
from bot.web.timefmt import exact, relative
from runner.running.input_files import is_record
from runner.running.logstore import latest_log, size_text, tail_bytes
from runner.state.records import AttemptRow, RunRecord, TaskRow, Trigger, TriggerType

NOT_FOUND = "no run with id {run_id}"
NO_LOG = "no log for task {task_id}"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}  # plain text stays plain in every browser
PAGE_TAIL_BYTES = 64 * 1024  # of each log on a run page; the whole log is a link away


def _inputs_text(inputs: dict[str, object]) -> str:
    """``name=value`` of each input; a file input by where it came from."""
    shown = {k: v["source"] if isinstance(v, dict) and is_record(v) else v
             for k, v in inputs.items()}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "none"


def _files(inputs: dict[str, object]) -> list[dict[str, str]]:
    """The run's file inputs: source, size and sha256 (as staged)."""
    return [{"name": name, "source": str(v["source"]),
             "size": format(v["size"], ",") if "size" in v else "–",
             "sha256": str(v.get("sha256", "–"))}
            for name, v in sorted(inputs.items()) if isinstance(v, dict) and is_record(v)]


STARTED_BY = {  # "started by …" on the run page, per trigger type
    TriggerType.MANUAL: "{actor} (manual run)",
    TriggerType.SCHEDULE: "the schedule {actor}",
    TriggerType.CLI: "{actor} (flowbot run)",
}


def started_by(trigger: Trigger) -> str:
    """Who or what started a run, in words: ``you (manual run)``."""
    text = STARTED_BY.get(trigger.type, "{actor} ({type})")
    return text.format(actor=trigger.actor, type=trigger.type.value)


def log_file(services: Services, run_id: str, task_id: str) -> tuple[Path, AttemptRow] | None:
    """The latest attempt's log file of a task, only from the data dir's logs."""
    return latest_log(services.store, services.settings.data_dir, run_id, task_id)


def _log_section(services: Services, run_id: str, task_id: str) -> dict[str, Any] | None:
    found = log_file(services, run_id, task_id)
    if found is None:
        return None
    path, attempt = found
    try:
        data, size = tail_bytes(path, PAGE_TAIL_BYTES)
    except OSError:
        return None  # removed since, e.g. by hand
    return {"task_id": task_id, "note": attempt.reason, "cut": len(data) < size,
            "shown": size_text(PAGE_TAIL_BYTES), "size": size,
            "href": f"/runs/{quote(run_id)}/logs/{quote(task_id)}",
            "text": data.decode("utf-8", errors="replace")}


def _plain(message: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=status, headers=NOSNIFF)


def _task(t: TaskRow, run_id: str) -> dict[str, Any]:
    return {"task_id": t.task_id, "status": str(t.status),
            "duration": "–" if t.duration is None else f"{t.duration:.1f}s",
            "exit_code": "–" if t.exit_code is None else str(t.exit_code),
            "attempts": t.attempts, "log_href": f"/runs/{quote(run_id)}/logs/{quote(t.task_id)}"}


def _times(run: RunRecord, now: datetime) -> list[tuple[str, dict[str, str]]]:
    moments = (("created", run.created_at), ("started", run.started_at),
               ("finished", run.finished_at))
    return [(label, {"relative": relative(moment, now), "exact": exact(moment)})
            for label, moment in moments if moment is not None]


def _duration(run: RunRecord) -> str | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return f"{(run.finished_at - run.started_at).total_seconds():.1f}s"


def run_page(services: Services, run: RunRecord, viewer: Viewer) -> Response:
    tasks = services.store.task_rows(run.id)
    logs = [section for t in tasks
            if (section := _log_section(services, run.id, t.task_id)) is not None]
    web = services.settings.github_web_url
    commit_url = f"{web}/{quote(run.repo)}/commit/{quote(run.commit)}" if run.commit else None
    return ui.render(
        "run.html", viewer, run=run, section="/runs", commit=(run.commit or "–")[:12],
        commit_url=commit_url, started_by=started_by(run.trigger),
        times=_times(run, services.clock.now()), duration=_duration(run),
        inputs=_inputs_text(run.inputs), files=_files(run.inputs),
        tasks=[_task(t, run.id) for t in tasks], logs=logs)


def pages_router(services: Services, access: Access) -> APIRouter:
    """``/``, the run pages and the JSON API (:func:`bot.web.api.api_router`), each
    behind ``access``: a run of a repository the viewer cannot read is not found."""
    router = APIRouter()
    router.include_router(api_router(services, access))

    @router.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        return ui.render("index.html", viewer, section="/",
                         repos=repo_blocks(services, viewer))

    def visible_run(viewer: Viewer, run_id: str) -> RunRecord | None:
        run = services.store.get_run(run_id)
        return run if run is not None and viewer.sees(run.repo) else None

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def show_run(run_id: str, request: Request) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        run = visible_run(viewer, run_id)
        if run is None:
            return _plain(NOT_FOUND.format(run_id=run_id), 404)
        return run_page(services, run, viewer)

    @router.get("/runs/{run_id}/logs/{task_id}")
    def show_log(run_id: str, task_id: str, request: Request) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        if visible_run(viewer, run_id) is None:
            return _plain(NOT_FOUND.format(run_id=run_id), 404)
        found = log_file(services, run_id, task_id)
        if found is None:
            return _plain(NO_LOG.format(task_id=task_id), 404)
        return FileResponse(found[0], media_type="text/plain; charset=utf-8",
                            headers=NOSNIFF, content_disposition_type="inline")

    return router
