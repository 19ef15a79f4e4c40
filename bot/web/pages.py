"""Pages: ``/`` (:mod:`bot.web.home`), ``/runs/<id>`` and ``/runs/<id>/logs/<task>``
on the base layout (:mod:`bot.web.ui`); :func:`pages_router` also carries the JSON
API of :mod:`bot.web.api`. Every page passes :class:`bot.web.auth.Access` first.

Logs are read only through the log store (:class:`runner.running.logstore.LogStore`:
files under the data dir, or the database on PostgreSQL, so any replica serves
any log), only as the runner recorded them, masked; everything shown is HTML-escaped.
A run page shows at most the last :data:`PAGE_TAIL_BYTES` of each log, read
from its end, with "load earlier" (``/runs/<id>/logs/<task>/chunk``:
the :data:`PAGE_TAIL_BYTES` before a byte offset); the whole log is streamed
in bounded reads. None reads a log whole into memory, whatever its size. The
page draws the task graph coloured by state (:mod:`bot.web.dag_svg`, also in the
live state block) and the attempts' timeline (:mod:`bot.web.gantt_svg`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import git
from fastapi import APIRouter
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bot import run_budget
from bot.services import Services
from bot.web import dag_svg, gantt_svg, ui
from bot.web.actions import Actions, Write
from bot.web.api import api_router
from bot.web.auth import Access, Viewer
from bot.web.home import repo_blocks
from bot.web.live import Snapshot, cursor_text, hub_of, live_response, parse_cursor
from bot.web.timefmt import shown
from runner.errors import FlowbotError
from runner.model.flows import flow_from_data
from runner.running.input_files import is_record
from runner.running.logstore import LogKey, size_text
from runner.state.records import AttemptRow, RunRecord, TaskRow, Trigger, TriggerType

log = logging.getLogger(__name__)

NOT_FOUND = "no run with id {run_id}"
RERUN_FAILED = "Cannot run again"
NO_COMMIT = "run {run_id} was started from local files (no commit): start it again with flowbot run"
NO_RUNS = "this flowbot runs no flows (no run service)"
NO_SOURCE = "cannot read {repo} at {commit}: {problem}"
FILE_GONE = ('input "{name}": its file ({source}) was not a repository path and '
             "was removed with run {run_id}, so it cannot be sent again; start a new run "
             "from the flow page's Run form or with /run, giving the file")
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


def log_file(services: Services, run_id: str, task_id: str) -> tuple[LogKey, AttemptRow] | None:
    """The latest attempt's log of a task, only one the log store itself recorded."""
    found = services.logs.latest(services.store, run_id, task_id)
    return None if found is None else (LogKey.of(found), found)


def _log_section(services: Services, run_id: str, task_id: str) -> dict[str, Any]:
    """A task's log block: the end of its latest attempt's log (empty until it has one)."""
    href = f"/runs/{quote(run_id)}/logs/{quote(task_id)}"
    empty = {"task_id": task_id, "note": None, "cut": False, "shown": "", "size": 0,
             "href": href, "text": "", "attempt": 0}
    found = log_file(services, run_id, task_id)
    if found is None:
        return empty
    key, attempt = found
    data, start = services.logs.tail(key, PAGE_TAIL_BYTES)
    size = start + len(data)
    return {"task_id": task_id, "note": attempt.reason, "cut": len(data) < size,
            "shown": size_text(PAGE_TAIL_BYTES), "size": size, "href": href,
            "earlier": f"{href}/chunk?{urlencode({'end': size - len(data)})}",
            "text": data.decode("utf-8", errors="replace"), "attempt": attempt.attempt}


def task_needs(run: RunRecord, tasks: list[TaskRow]) -> dict[str, list[str]]:
    """``{task: needs}`` of the run's tasks in flow order (from the flow as it ran)."""
    try:
        flow = flow_from_data(run.flow_data, path=run.flow_path)
        declared = {t.id: list(t.needs) for t in flow.tasks}
    except FlowbotError:
        declared = {}  # the graph without edges rather than no page
    return {t.task_id: declared.get(t.task_id, []) for t in tasks}


def task_anchor(task_id: str) -> str:
    return f"#task-{quote(task_id)}"


def run_graph(drawn: dag_svg.Layout, tasks: list[TaskRow]) -> Markup:
    """The task graph coloured by each task's state, each linking to its log."""
    return dag_svg.render(drawn, states={t.task_id: str(t.status) for t in tasks},
                          link=task_anchor, label="tasks of this run by state")


def run_timeline(run: RunRecord, needs: dict[str, list[str]], attempts: Sequence[AttemptRow],
                 now: datetime) -> Markup:
    """The Gantt timeline of the run's attempts (waiting vs running)."""
    origin = run.started_at or run.created_at
    drawn = gantt_svg.bars(needs, attempts, origin)
    return gantt_svg.render(gantt_svg.chart(list(needs), drawn, origin, now),
                            link=task_anchor)


def timeline_html(services: Services, needs: dict[str, list[str]], snap: Snapshot) -> str:
    """The live timeline block (``_run_timeline.html``) of what a tick read."""
    if snap.run is None:
        return ""
    timeline = run_timeline(snap.run, needs, snap.attempts, services.clock.now())
    return bytes(ui.render("_run_timeline.html", None, timeline=timeline).body).decode()


def _plain(message: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=status, headers=NOSNIFF)


def _task(t: TaskRow, run_id: str) -> dict[str, Any]:
    return {"task_id": t.task_id, "status": str(t.status),
            "duration": "–" if t.duration is None else f"{t.duration:.1f}s",
            "exit_code": "–" if t.exit_code is None else str(t.exit_code),
            "attempts": t.attempts, "log_href": f"/runs/{quote(run_id)}/logs/{quote(t.task_id)}",
            "reason": t.reason, "outputs": sorted(t.outputs.items())}


def _times(run: RunRecord, now: datetime) -> list[tuple[str, dict[str, str] | None]]:
    moments = (("created", run.created_at), ("started", run.started_at),
               ("finished", run.finished_at))
    return [(label, shown(moment, now)) for label, moment in moments if moment is not None]


def _duration(run: RunRecord) -> str | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return f"{(run.finished_at - run.started_at).total_seconds():.1f}s"


def state_html(viewer: Viewer, controls: dict[str, Any], drawn: dag_svg.Layout,
               snap: Snapshot) -> str:
    """The run's live block (status, error, buttons, graph, tasks) of what a tick read;
    ``drawn``: the graph's layout, computed once per stream."""
    run = snap.run
    if run is None:
        return ""
    rows = list(snap.tasks)
    tasks = [_task(t, run.id) for t in rows]
    body = ui.render("_run_state.html", viewer, run=run, tasks=tasks,
                     graph=run_graph(drawn, rows), **controls).body
    return bytes(body).decode()


def run_page(services: Services, run: RunRecord, viewer: Viewer,
             controls: dict[str, Any]) -> Response:
    """The run page; ``controls``: ``can_write`` and ``csrf`` (bot.web.actions)."""
    tasks = services.store.task_rows(run.id)
    needs = task_needs(run, tasks)
    logs = [_log_section(services, run.id, t.task_id) for t in tasks]
    cursor = {log["task_id"]: (log["attempt"], log["size"]) for log in logs if log["attempt"]}
    web = services.settings.github_web_url
    commit_url = f"{web}/{quote(run.repo)}/commit/{quote(run.commit)}" if run.commit else None
    return ui.render(
        "run.html", viewer, run=run, section="/runs", commit=(run.commit or "–")[:12],
        commit_url=commit_url, started_by=started_by(run.trigger),
        times=_times(run, services.clock.now()), duration=_duration(run),
        inputs=_inputs_text(run.inputs), files=_files(run.inputs),
        tasks=[_task(t, run.id) for t in tasks], logs=logs,
        graph=run_graph(dag_svg.layout(needs), tasks),
        timeline=run_timeline(run, needs, services.store.attempts(run.id),
                              services.clock.now()),
        live=f"/runs/{quote(run.id)}/live?{urlencode({'from': cursor_text(cursor)})}",
        **controls)


def rerun_inputs(run: RunRecord) -> dict[str, object]:
    """``run``'s inputs as given again: a file input read from a repository path
    (``@path``) is read again at the run's commit; one that was attachment or upload
    raises FlowbotError naming it (its copy went with the run)."""
    inputs: dict[str, object] = {}
    for name, value in run.inputs.items():
        if isinstance(value, dict) and is_record(value):
            source = str(value["source"])
            if not source.startswith("@"):
                raise FlowbotError(FILE_GONE.format(name=name, source=source, run_id=run.id))
            value = source
        inputs[name] = value
    return inputs


def rerun_of(services: Services, run: RunRecord, viewer: Viewer) -> str:
    """Start ``run`` again: its flow as it ran, at its commit, with its inputs; the new
    run's id. Raises FlowbotError (InputError, SecretMissing …) with nothing recorded."""
    if run.commit is None:
        raise FlowbotError(NO_COMMIT.format(run_id=run.id))
    if services.runs is None:
        raise FlowbotError(NO_RUNS)
    run_budget.check(services, viewer.name, run.repo)  # OverBudget: nothing started
    inputs = rerun_inputs(run)
    flow = flow_from_data(run.flow_data, path=run.flow_path)
    try:
        clone_url = f"{services.settings.github_web_url}/{run.repo}.git"
        source = services.mirror(run.repo, clone_url, None, want=run.commit)
    except (git.GitCommandError, OSError) as exc:
        raise FlowbotError(NO_SOURCE.format(repo=run.repo, commit=run.commit[:12],
                                            problem=type(exc).__name__)) from None
    submission = services.runs.submit(flow, inputs, repo=run.repo, commit=run.commit,
                                      source=source,
                                      trigger=Trigger(TriggerType.MANUAL, viewer.name))
    log.info("run started again from its page", extra={
        "run": submission.run_id, "of": run.id, "repo": run.repo, "actor": viewer.name})
    return submission.run_id


def pages_router(services: Services, access: Access) -> APIRouter:
    """``/``, the run pages and the JSON API (:func:`bot.web.api.api_router`), each
    behind ``access``: a run of a repository the viewer cannot read is not found."""
    router = APIRouter()
    router.include_router(api_router(services, access))
    actions = Actions(services, access)

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

    def seen_run(run_id: str, request: Request) -> tuple[Viewer, RunRecord] | Response:
        """The viewer and the run they may read, or the refusal (sign in, 404)."""
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        run = visible_run(viewer, run_id)
        if run is None:
            return _plain(NOT_FOUND.format(run_id=run_id), 404)
        return viewer, run

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def show_run(run_id: str, request: Request) -> Response:
        seen = seen_run(run_id, request)
        if isinstance(seen, Response):
            return seen
        viewer, run = seen
        return run_page(services, run, viewer,
                        actions.form_context(request, viewer, run.repo))

    @router.get("/runs/{run_id}/live")
    def live_run(run_id: str, request: Request) -> Response:
        seen = seen_run(run_id, request)
        if isinstance(seen, Response):
            return seen
        viewer, run = seen
        controls = actions.form_context(request, viewer, run.repo)
        cursor = parse_cursor(request.headers.get("last-event-id")
                              or request.query_params.get("from"))
        needs = task_needs(run, services.store.task_rows(run.id))
        drawn = dag_svg.layout(needs)
        return live_response(
            request, hub_of(request, services), run.id, cursor,
            state=lambda snap: state_html(viewer, controls, drawn, snap),
            state_key=(viewer, controls.get("can_write"), controls.get("csrf")),
            timeline=lambda snap: timeline_html(services, needs, snap))

    async def writer_of(run_id: str, request: Request) -> tuple[RunRecord, Write] | Response:
        """The run a write button acts on and its writer, or the refusal."""
        run = services.store.get_run(run_id)
        if run is None:
            return _plain(NOT_FOUND.format(run_id=run_id), 404)
        write = await actions.require_writer(request, run.repo)
        return write if isinstance(write, Response) else (run, write)

    @router.post("/runs/{run_id}/cancel")
    async def cancel_run(run_id: str, request: Request) -> Response:
        gated = await writer_of(run_id, request)
        if isinstance(gated, Response):
            return gated
        _, write = gated
        cancelled = await run_in_threadpool(services.runs.cancel, run_id)
        log.info("run cancelled from its page", extra={
            "run": run_id, "actor": write.viewer.name, "cancelled": cancelled})
        return RedirectResponse(f"/runs/{quote(run_id)}", status_code=303)

    @router.post("/runs/{run_id}/rerun")
    async def rerun(run_id: str, request: Request) -> Response:
        gated = await writer_of(run_id, request)
        if isinstance(gated, Response):
            return gated
        run, write = gated
        try:
            new_id = await run_in_threadpool(rerun_of, services, run, write.viewer)
        except run_budget.OverBudget as exc:
            return ui.message(write.viewer, RERUN_FAILED, str(exc), 429,
                              link=(f"/runs/{quote(run_id)}", "back to the run"))
        except FlowbotError as exc:
            return ui.message(write.viewer, RERUN_FAILED, str(exc), 409,
                              link=(f"/runs/{quote(run_id)}", "back to the run"))
        return RedirectResponse(f"/runs/{quote(new_id)}", status_code=303)

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
        size = services.logs.size(found[0])  # what is written now; a running task adds more
        return StreamingResponse(services.logs.iterate(found[0], size),
                                 media_type="text/plain; charset=utf-8",
                                 headers={**NOSNIFF, "Content-Length": str(size),
                                          "Content-Disposition": "inline"})

    @router.get("/runs/{run_id}/logs/{task_id}/chunk", response_class=HTMLResponse)
    def log_chunk(run_id: str, task_id: str, request: Request, end: int = 0) -> Response:
        """The :data:`PAGE_TAIL_BYTES` of a task's latest log before byte ``end``
        ("load earlier" on the run page; a link to the chunk before that)."""
        seen = seen_run(run_id, request)
        if isinstance(seen, Response):
            return seen
        viewer, run = seen
        found = log_file(services, run_id, task_id)
        if found is None:
            return _plain(NO_LOG.format(task_id=task_id), 404)
        data, start, size = services.logs.chunk_before(found[0], end, PAGE_TAIL_BYTES)
        href = f"/runs/{quote(run_id)}/logs/{quote(task_id)}"
        return ui.render(
            "log_chunk.html", viewer, section="/runs", run=run, task_id=task_id,
            text=data.decode("utf-8", errors="replace"), start=start, end=start + len(data),
            size=size, href=href, attempt=found[1].attempt,
            earlier=f"{href}/chunk?{urlencode({'end': start})}" if start > 0 else None,
            later=(f"{href}/chunk?{urlencode({'end': start + len(data) + PAGE_TAIL_BYTES})}"
                   if start + len(data) < size else None))

    return router
