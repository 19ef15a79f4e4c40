"""``/flows/<owner>/<repo>/<flow_id>``: one flow — its source on GitHub, task graph
(:mod:`bot.web.dag_svg`), triggers, run history — with a **Run** form built from
its typed inputs and **Pause / Resume** of its schedules.

Only readers of the repository see the page (anyone else: 404). The writes
(``POST …/run``, ``…/pause``, ``…/resume``) pass :class:`bot.web.actions.Actions`:
write permission on the repository and the form's CSRF token. The Run form is
``multipart/form-data`` (file inputs are uploads), so its gate reads the form
itself and asks the same two questions. Its inputs get the checks of ``/run``
(:func:`runner.running.inputs.coerce_inputs` inside the run service); a refused
input is shown next to its field with what was typed kept. An uploaded file is
given to the run as ``flowbot run -i name=@file`` gives a local file: copied into
the run's inputs when the run is staged, from a folder in the data dir that is
removed right after.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import git
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from bot import run_budget
from bot.github.interfaces import GitHubError
from bot.services import Services
from bot.web import dag_svg, ui
from bot.web.actions import (
    BAD_CSRF,
    CSRF_FIELD,
    NOT_CHECKED,
    NOT_WRITER,
    REFUSED,
    WRITERS,
    Actions,
)
from bot.web.auth import LOOPBACK_ONLY, Access, Viewer
from bot.web.flow_view import form_fields, github_links, runs_page, trigger_lines
from runner.errors import FlowbotError, FlowNotFound, InputError, SecretMissing
from runner.model.flows import InputType
from runner.running.input_files import TOO_LARGE
from runner.running.inputs import FileSource
from runner.scheduling.registry import RegisteredFlow
from runner.state.records import Trigger, TriggerType

log = logging.getLogger(__name__)

NOT_FOUND = "no flow {flow_id} in {repo} that you can read"
NO_RUNS = "this flowbot does not run flows (no run service configured)"
NO_SECRET = ("it needs secret(s) {names} and this flowbot has no value for them: whoever runs "
             "flowbot sets {variables} and restarts it")
NO_SOURCE = "cannot read {repo} at {commit}: {problem}"
_CHUNK = 1024 * 1024


def _plain_404(repo: str, flow_id: str) -> PlainTextResponse:
    return PlainTextResponse(NOT_FOUND.format(flow_id=flow_id, repo=repo), status_code=404,
                             headers={"X-Content-Type-Options": "nosniff"})


def flow_href(repo: str, flow_id: str) -> str:
    return f"/flows/{quote(repo)}/{quote(flow_id)}"


def _save_uploads(registered: RegisteredFlow, form: FormData, folder: Path,
                  max_bytes: int) -> dict[str, object]:
    """The posted inputs as ``/run`` takes them: text as typed (blank: not given),
    a checkbox as true/false, an upload as a local file of ``folder``."""
    given: dict[str, object] = {}
    for name, spec in registered.flow.inputs.items():
        value = form.get(name)
        if spec.type is InputType.BOOL:
            given[name] = "true" if value is not None else "false"
        elif isinstance(value, UploadFile):
            if value.filename:
                given[name] = _saved(name, value, folder / name, max_bytes)
        elif value:  # blank: the default applies, or "required" is said
            given[name] = value
    return given


def _saved(name: str, upload: UploadFile, dest: Path, max_bytes: int) -> FileSource:
    label = f"uploaded file {Path(upload.filename or name).name}"
    written = 0
    with dest.open("wb") as out:
        while chunk := upload.file.read(_CHUNK):
            written += len(chunk)
            if written > max_bytes:  # stop before the disk fills; staging says the same
                raise InputError(name, TOO_LARGE.format(label=label, limit=max_bytes))
            out.write(chunk)
    return FileSource(label=label, local=dest)


class FlowPages:
    """The flow page and its three writes over ``services``."""

    def __init__(self, services: Services, access: Access) -> None:
        self.services, self.access = services, access
        self.actions = Actions(services, access)

    def visible(self, viewer: Viewer, repo: str, flow_id: str) -> RegisteredFlow | None:
        if not viewer.sees(repo):
            return None
        return self.services.registry.get(repo, flow_id)

    def page(self, request: Request, viewer: Viewer, repo: str, registered: RegisteredFlow,
             before: str | None = None, status: int = 200, **form: Any) -> HTMLResponse:
        flow, services = registered.flow, self.services
        href = flow_href(repo, flow.id)
        graph = dag_svg.render(dag_svg.layout({t.id: t.needs for t in flow.tasks}),
                               label=f"tasks of {flow.id}")
        return ui.render(
            "flow.html", viewer, status, section=None, repo=repo, flow=flow,
            registered=registered, href=href, links=github_links(services, repo, registered),
            graph=graph, triggers=trigger_lines(services, repo, flow),
            history=runs_page(services, repo, flow.id, before), before=before,
            fields=form.get("fields") or form_fields(flow), form_error=form.get("form_error"),
            **self.actions.form_context(request, viewer, repo))

    async def run_gate(self, request: Request, repo: str) -> tuple[Viewer, FormData] | Response:
        """Like :meth:`Actions.require_writer`, for a multipart form."""
        viewer = self.access.viewer(request.scope, request.scope.get("session"))
        if viewer is None:  # the gate's own answer: sign in, or not from here
            refused = await self.actions.require_writer(request, repo)
            return refused if isinstance(refused, Response) else ui.message(
                None, REFUSED, LOOPBACK_ONLY, 403)
        form = await request.form(max_files=16, max_fields=256)
        csrf = form.get(CSRF_FIELD)
        if not self.actions.csrf_ok(request, viewer, csrf if isinstance(csrf, str) else None):
            log.warning("run refused: CSRF token missing or wrong", extra={"repo": repo})
            return ui.message(viewer, REFUSED, BAD_CSRF, 403)
        try:
            permission = await run_in_threadpool(self.actions.permission, viewer, repo)
        except GitHubError:
            return ui.message(viewer, REFUSED, NOT_CHECKED.format(login=viewer.name, repo=repo),
                              503)
        if permission not in WRITERS:
            return ui.message(viewer, REFUSED, NOT_WRITER.format(
                login=viewer.name, repo=repo, permission=permission), 403)
        return viewer, form

    def submit(self, viewer: Viewer, repo: str, registered: RegisteredFlow,
               form: FormData) -> str:
        """Start a run from the form; its id. Raises InputError, SecretMissing,
        FlowbotError (the repository could not be read; OverBudget: the viewer started
        FLOWBOT_RUNS_PER_USER_PER_HOUR runs of it in the last hour) with nothing recorded."""
        services, flow = self.services, registered.flow
        if services.runs is None:
            raise FlowbotError(NO_RUNS)
        run_budget.check(services, viewer.name, repo)
        services.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="uploads-",
                                         dir=services.settings.data_dir) as folder:
            given = _save_uploads(registered, form, Path(folder),
                                  services.settings.input_file_max_bytes)
            try:
                clone_url = f"{services.settings.github_web_url}/{repo}.git"
                source = services.mirror(repo, clone_url, None, want=registered.commit)
            except (git.GitCommandError, OSError) as exc:
                raise FlowbotError(NO_SOURCE.format(repo=repo, commit=registered.commit[:12],
                                                    problem=type(exc).__name__)) from None
            submission = services.runs.submit(
                flow, given, repo=repo, commit=registered.commit, source=source,
                trigger=Trigger(TriggerType.MANUAL, viewer.name))
        log.info("run submitted from the flow page",
                 extra={"run": submission.run_id, "repo": repo, "flow": flow.id,
                        "actor": viewer.name})
        return submission.run_id


def _refilled(registered: RegisteredFlow, form: FormData, error: InputError | None) -> Any:
    typed = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
    errors = {error.name: error.problem} if error is not None else {}
    return form_fields(registered.flow, typed, errors)


def flow_router(services: Services, access: Access) -> APIRouter:
    """``GET /flows/{owner}/{repo}/{flow_id}`` and its ``POST …/run|pause|resume``."""
    router = APIRouter()
    pages = FlowPages(services, access)

    @router.get("/flows/{owner}/{name}/{flow_id}", response_class=HTMLResponse)
    def show_flow(owner: str, name: str, flow_id: str, request: Request,
                  before: str | None = None) -> Response:
        viewer = ui.page_viewer(access, request)
        if isinstance(viewer, Response):
            return viewer
        repo = f"{owner}/{name}"
        registered = pages.visible(viewer, repo, flow_id)
        if registered is None:
            return _plain_404(repo, flow_id)
        return pages.page(request, viewer, repo, registered, before)

    @router.post("/flows/{owner}/{name}/{flow_id}/run")
    async def run_flow(owner: str, name: str, flow_id: str, request: Request) -> Response:
        repo = f"{owner}/{name}"
        gate = await pages.run_gate(request, repo)
        if isinstance(gate, Response):
            return gate
        viewer, form = gate
        registered = pages.visible(viewer, repo, flow_id)
        if registered is None:
            return _plain_404(repo, flow_id)
        try:
            run_id = await run_in_threadpool(pages.submit, viewer, repo, registered, form)
        except InputError as exc:
            return pages.page(request, viewer, repo, registered, status=400,
                              fields=_refilled(registered, form, exc))
        except SecretMissing as exc:
            problem = NO_SECRET.format(names=", ".join(exc.names), variables=", ".join(
                f"FLOWBOT_SECRET_{n}" for n in exc.names))
            return pages.page(request, viewer, repo, registered, status=400,
                              fields=_refilled(registered, form, None), form_error=problem)
        except run_budget.OverBudget as exc:
            return pages.page(request, viewer, repo, registered, status=429,
                              fields=_refilled(registered, form, None), form_error=str(exc))
        except FlowbotError as exc:
            return pages.page(request, viewer, repo, registered, status=503,
                              fields=_refilled(registered, form, None), form_error=str(exc))
        finally:
            await form.close()
        return RedirectResponse(f"/runs/{quote(run_id)}", status_code=303)

    async def pause_or_resume(request: Request, repo: str, flow_id: str,
                              resume: bool) -> Response:
        write = await pages.actions.require_writer(request, repo)
        if isinstance(write, Response):
            return write
        try:
            if resume:
                services.schedules.resume(repo, flow_id)
            else:
                services.schedules.pause(repo, flow_id)
        except FlowNotFound:
            return _plain_404(repo, flow_id)
        log.info("flow %s from its page", "resumed" if resume else "paused",
                 extra={"repo": repo, "flow": flow_id, "actor": write.viewer.name})
        return RedirectResponse(flow_href(repo, flow_id), status_code=303)

    @router.post("/flows/{owner}/{name}/{flow_id}/pause")
    async def pause_flow(owner: str, name: str, flow_id: str, request: Request) -> Response:
        return await pause_or_resume(request, f"{owner}/{name}", flow_id, resume=False)

    @router.post("/flows/{owner}/{name}/{flow_id}/resume")
    async def resume_flow(owner: str, name: str, flow_id: str, request: Request) -> Response:
        return await pause_or_resume(request, f"{owner}/{name}", flow_id, resume=True)

    return router
