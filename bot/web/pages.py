"""Run pages: ``/runs/<id>`` and ``/runs/<id>/logs/<task>``; :func:`pages_router`
also carries the JSON API of :mod:`bot.web.api`.

Logs are shown only from where the runner writes them, masked
(``<data_dir>/logs/<run>/<task>.<attempt>.log``); everything shown is HTML-escaped.
A run page shows at most the last :data:`PAGE_TAIL_BYTES` of each log, read
from the end of the file; the whole log is served from the file in chunks.
Neither reads a log whole into memory, whatever its size.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from bot.services import Services
from bot.web.api import api_router
from runner.running.input_files import is_record
from runner.running.logstore import latest_log, size_text, tail_bytes
from runner.state.records import AttemptRow, RunRecord, TaskRow, Trigger, TriggerType

NOT_FOUND = "no run with id {run_id}"
NO_LOG = "no log for task {task_id}"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}  # plain text stays plain in every browser
PAGE_TAIL_BYTES = 64 * 1024  # of each log on a run page; the whole log is a link away
SHOWING_TAIL = ('<p>Showing the last {shown} of {size} bytes; '
                '<a href="{href}">the whole log</a>.</p>')
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowbot run {id}</title>{refresh}
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
pre{{background:#f6f8fa;padding:1em;overflow:auto;max-height:30em}}</style></head>
<body><h1>Run {id}: {flow} — {status}</h1>
<p>Repository {repo}, commit {commit}, started by {trigger}, created {created}.</p>
<p>Inputs: {inputs}</p>{files}
{error}<table><tr><th>task</th><th>state</th><th>duration</th><th>exit code</th>
<th>attempts</th><th>log</th></tr>{rows}</table>{logs}</body></html>
"""


FILES = ("<table><tr><th>file input</th><th>from</th><th>size (bytes)</th><th>sha256</th></tr>"
         "{rows}</table>")


def _inputs_text(inputs: dict[str, object]) -> str:
    """``name=value`` of each input; a file input by where it came from."""
    shown = {k: v["source"] if isinstance(v, dict) and is_record(v) else v
             for k, v in inputs.items()}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "none"


def _files(inputs: dict[str, object]) -> str:
    """A table of the run's file inputs: source, size and sha256 (as staged)."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(name)}</td><td>{e(str(v['source']))}</td>"
        f"<td>{e(format(v['size'], ',') if 'size' in v else '–')}</td>"
        f"<td><code>{e(str(v.get('sha256', '–')))}</code></td></tr>"
        for name, v in sorted(inputs.items()) if isinstance(v, dict) and is_record(v))
    return FILES.format(rows=rows) if rows else ""


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


def _log_section(services: Services, run_id: str, task_id: str) -> str:
    e = html.escape
    found = log_file(services, run_id, task_id)
    if found is None:
        return ""
    path, attempt = found
    try:
        data, size = tail_bytes(path, PAGE_TAIL_BYTES)
    except OSError:
        return ""  # removed since, e.g. by hand
    note = f"<p><strong>{e(attempt.reason)}</strong></p>" if attempt.reason else ""
    href = f"/runs/{quote(run_id)}/logs/{quote(task_id)}"
    shown = SHOWING_TAIL.format(shown=size_text(PAGE_TAIL_BYTES), size=size,
                                href=e(href)) if len(data) < size else ""
    text_ = data.decode("utf-8", errors="replace")
    return f"<h2>{e(task_id)}</h2>{note}{shown}<pre>{e(text_)}</pre>"


def _plain(message: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=status, headers=NOSNIFF)


def _row(t: TaskRow, run_id: str) -> str:
    e = html.escape
    duration = "–" if t.duration is None else f"{t.duration:.1f}s"
    code = "–" if t.exit_code is None else str(t.exit_code)
    link = f'<a href="/runs/{e(quote(run_id))}/logs/{e(quote(t.task_id))}">log</a>'
    return (f"<tr><td>{e(t.task_id)}</td><td>{e(str(t.status))}</td><td>{duration}</td>"
            f"<td>{code}</td><td>{t.attempts}</td><td>{link}</td></tr>")


def run_page(services: Services, run: RunRecord) -> str:
    e = html.escape
    tasks = services.store.task_rows(run.id)
    logs = "".join(_log_section(services, run.id, t.task_id) for t in tasks)
    return PAGE.format(
        id=e(run.id), flow=e(run.flow_id), status=e(str(run.status)), repo=e(run.repo),
        commit=e((run.commit or "–")[:12]), trigger=e(started_by(run.trigger)),
        created=e(run.created_at.isoformat()),
        inputs=e(_inputs_text(run.inputs)), files=_files(run.inputs),
        refresh="" if run.status.terminal else '<meta http-equiv="refresh" content="5">',
        error=f"<p><strong>{e(run.error)}</strong></p>" if run.error else "",
        rows="".join(_row(t, run.id) for t in tasks), logs=logs,
    )


def pages_router(services: Services) -> APIRouter:
    """The run pages and the JSON API (:func:`bot.web.api.api_router`)."""
    router = APIRouter()
    router.include_router(api_router(services))

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def show_run(run_id: str) -> Response:
        run = services.store.get_run(run_id)
        if run is None:
            return _plain(NOT_FOUND.format(run_id=run_id), 404)
        return HTMLResponse(run_page(services, run))

    @router.get("/runs/{run_id}/logs/{task_id}")
    def show_log(run_id: str, task_id: str) -> Response:
        if services.store.get_run(run_id) is None:
            return _plain(NOT_FOUND.format(run_id=run_id), 404)
        found = log_file(services, run_id, task_id)
        if found is None:
            return _plain(NO_LOG.format(task_id=task_id), 404)
        return FileResponse(found[0], media_type="text/plain; charset=utf-8",
                            headers=NOSNIFF, content_disposition_type="inline")

    return router
