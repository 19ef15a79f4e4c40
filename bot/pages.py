"""Run pages and the small JSON API: ``/runs/<id>``, ``/runs/<id>/logs/<task>``,
``/api/flows``, ``/api/runs``, ``/api/schedules``, ``/healthz``.

Logs are stored masked by the runner; everything shown is HTML-escaped.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import text

from bot.services import Services
from runner.records import RunRecord, TaskRow
from runner.schedule_view import schedule_rows

NOT_FOUND = "no run with id {run_id}"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowbot run {id}</title>{refresh}
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
pre{{background:#f6f8fa;padding:1em;overflow:auto;max-height:30em}}</style></head>
<body><h1>Run {id}: {flow} — {status}</h1>
<p>Repository {repo}, commit {commit}, triggered by {trigger}, created {created}.</p>
<p>Inputs: {inputs}</p>
{error}<table><tr><th>task</th><th>state</th><th>duration</th><th>exit code</th>
<th>attempts</th><th>log</th></tr>{rows}</table>{logs}</body></html>
"""


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


def task_log(services: Services, run_id: str, task_id: str) -> str | None:
    """The latest attempt's log (stored masked by the runner) of a task, or None if it has none."""
    attempts = [a for a in services.store.attempts(run_id, task_id) if a.log_path]
    if not attempts:
        return None
    try:
        return Path(attempts[-1].log_path or "").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _row(t: TaskRow, run_id: str) -> str:
    e = html.escape
    duration = "–" if t.duration is None else f"{t.duration:.1f}s"
    code = "–" if t.exit_code is None else str(t.exit_code)
    link = f'<a href="/runs/{e(run_id)}/logs/{e(t.task_id)}">log</a>'
    return (f"<tr><td>{e(t.task_id)}</td><td>{e(str(t.status))}</td><td>{duration}</td>"
            f"<td>{code}</td><td>{t.attempts}</td><td>{link}</td></tr>")


def run_page(services: Services, run: RunRecord) -> str:
    e = html.escape
    tasks = services.store.task_rows(run.id)
    logs = ""
    for t in tasks:
        text_ = task_log(services, run.id, t.task_id)
        if text_ is not None:
            logs += f"<h2>{e(t.task_id)}</h2><pre>{e(text_)}</pre>"
    return PAGE.format(
        id=e(run.id), flow=e(run.flow_id), status=e(str(run.status)), repo=e(run.repo),
        commit=e((run.commit or "–")[:12]), trigger=e(f"{run.trigger.type} {run.trigger.actor}"),
        created=e(run.created_at.isoformat()),
        inputs=e(", ".join(f"{k}={v}" for k, v in sorted(run.inputs.items())) or "none"),
        refresh="" if run.status.terminal else '<meta http-equiv="refresh" content="5">',
        error=f"<p><strong>{e(run.error)}</strong></p>" if run.error else "",
        rows="".join(_row(t, run.id) for t in tasks), logs=logs,
    )


def pages_router(services: Services) -> APIRouter:
    router = APIRouter()

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def show_run(run_id: str) -> Response:
        run = services.store.get_run(run_id)
        if run is None:
            return PlainTextResponse(NOT_FOUND.format(run_id=run_id), status_code=404)
        return HTMLResponse(run_page(services, run))

    @router.get("/runs/{run_id}/logs/{task_id}")
    def show_log(run_id: str, task_id: str) -> Response:
        if services.store.get_run(run_id) is None:
            return PlainTextResponse(NOT_FOUND.format(run_id=run_id), status_code=404)
        log_text = task_log(services, run_id, task_id)
        if log_text is None:
            return PlainTextResponse(f"no log for task {task_id}", status_code=404)
        return PlainTextResponse(log_text)

    @router.get("/api/runs")
    def api_runs(repo: str | None = None, flow: str | None = None, limit: int = 50) -> Response:
        found = services.store.list_runs(repo=repo, flow_id=flow, limit=min(limit, 500))
        return JSONResponse([run_json(r) for r in found])

    @router.get("/api/flows")
    def api_flows(repo: str) -> Response:
        flows = services.registry.list(repo)
        return JSONResponse([
            {"id": f.flow.id, "path": f.path, "commit": f.commit, "digest": f.digest,
             "paused": f.paused, "description": f.flow.description,
             "triggers": [{"id": t.id, "cron": t.cron, "timezone": t.timezone}
                          for t in f.flow.triggers]}
            for f in flows
        ])

    @router.get("/api/schedules")
    def api_schedules(repo: str | None = None) -> Response:
        return JSONResponse(schedule_rows(services.engine, repo))

    @router.get("/healthz")
    def healthz() -> Response:
        try:
            with services.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not healthy"
            return JSONResponse({"ok": False, "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": True})

    return router
