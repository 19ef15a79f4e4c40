"""Commands in issue and PR comments: ``/run``, ``/cancel``, ``/help``,
``/pause``, ``/resume``.

Acknowledged at once with 👀. Everything but ``/help`` needs write permission
or higher, checked through the collaborator permission API. A run uses the
flow as registered from the default branch, so a fork PR never runs its own
version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import render
from bot.commands import Command, CommandError, Verb, parse_commands
from bot.github import GitHubError, RepoClient
from bot.handlers.reporting import report
from bot.router import Event, Router
from bot.run_reports import RunReport, RunReports
from bot.services import Services
from runner.diagnostics import did_you_mean
from runner.errors import FlowNotFound, InputError
from runner.flows import Flow
from runner.records import Trigger, TriggerType
from runner.validate import validate_files

log = logging.getLogger(__name__)

router: Router[Services] = Router()

WRITERS = frozenset({"admin", "maintain", "write"})
REFUSED = ("Sorry @{login}, `/{verb}` needs write access to this repository; "
           "ask a maintainer to run it for you.")
UNKNOWN_FLOW = "@{login} there is no flow `{flow_id}` in this repository{hint}.\n\n{known}"
KNOWN_FLOWS = "Registered flows: {flows}."
NO_FLOWS = "No flows are registered yet: merge a `flows/*.yml` into the default branch first."
BAD_INPUT = "@{login} cannot run `{flow_id}`: input `{name}` {problem}.{expects}"
EXPECTS = " It expects {kind}{extra}."
RUNS_OFF = "@{login} this flowbot does not run flows (no run service configured)."
UNKNOWN_RUN = "@{login} there is no run `{run_id}` of this repository."
CANCELLING = "@{login} cancelling run `{run_id}`."
ALREADY_OVER = "@{login} run `{run_id}` had already ended ({status})."
PAUSED = "@{login} paused the schedules of `{flow_id}`; `/resume {flow_id}` starts them again."
RESUMED = "@{login} resumed the schedules of `{flow_id}`{missed}."
MISSED = " ({count} slot(s) missed while paused are recorded as skipped)"
BAD_COMMAND = "@{login} {message}"
BOT_MARKER = "<!-- flowbot:"


@dataclass(frozen=True)
class _Ctx:
    event: Event
    services: Services
    client: RepoClient
    login: str
    number: int


def _from_a_bot(comment: dict[str, Any]) -> bool:
    author = comment.get("user") or {}
    login = str(author.get("login", ""))
    return (author.get("type") == "Bot" or login.endswith("[bot]")
            or BOT_MARKER in str(comment.get("body", "")))


@router.register("issue_comment", "created")
def on_comment(event: Event, services: Services) -> None:
    comment = dict(event.payload["comment"])
    if not services.acted_on(event.repo) or _from_a_bot(comment):
        return  # not one of FLOWBOT_REPOS, or a bot (flowbot itself included)
    commands = parse_commands(str(comment.get("body") or ""))
    if not commands:
        return  # an ordinary comment
    client = services.client(event.repo, event.installation_id)
    try:
        client.add_reaction(int(comment["id"]), "eyes")
    except GitHubError:  # the acknowledgement is a courtesy; the command still runs
        log.warning("could not react to a comment", extra={"repo": event.repo})
    ctx = _Ctx(event, services, client, str(comment["user"]["login"]),
               int(event.payload["issue"]["number"]))
    allowed: bool | None = None
    for cmd in commands:
        if isinstance(cmd, CommandError):
            client.create_comment(ctx.number, BAD_COMMAND.format(login=ctx.login,
                                                                 message=cmd.message))
            continue
        if cmd.verb is Verb.HELP:
            client.create_comment(ctx.number, render.HELP)
            continue
        if allowed is None:
            allowed = client.permission_of(ctx.login) in WRITERS
        if not allowed:
            client.create_comment(ctx.number, REFUSED.format(login=ctx.login, verb=cmd.verb))
            continue
        _ACTIONS[cmd.verb](ctx, cmd)


def _expects(spec: Any) -> str:
    if spec is None:
        return ""
    extra = f" (one of {', '.join(spec.choices)})" if spec.choices else ""
    if spec.pattern:
        extra += f" matching `{spec.pattern}`"
    return EXPECTS.format(kind=f"a {spec.type.value}", extra=extra)


def _pr_head_flow(ctx: _Ctx, flow_id: str) -> tuple[Flow, str, Path] | None:
    """The PR head's valid version of ``flow_id``, for a same-repository PR only."""
    if "pull_request" not in ctx.event.payload["issue"]:
        return None  # an issue: the registered flow
    try:
        pull = ctx.client.get_pull(ctx.number)
    except GitHubError:
        log.warning("could not read the pull request; using the registered flow",
                    extra={"repo": ctx.event.repo, "pr": ctx.number})
        return None
    if pull.is_fork:
        return None  # a fork never runs its own version
    services = ctx.services
    mirror = services.mirror(ctx.event.repo, _clone_url(ctx), ctx.event.installation_id,
                             want=pull.head_sha)
    report = validate_files(services.repos.read_flows(mirror, pull.head_sha),
                            now=services.clock.now())
    for file in report.files:
        if file.flow is not None and file.ok and file.flow.id == flow_id:
            return file.flow, pull.head_sha, mirror
    return None  # not (validly) in the PR: fall back to the registered one


def _clone_url(ctx: _Ctx) -> str:
    return str(ctx.event.payload["repository"]["clone_url"])


def _flow_to_run(ctx: _Ctx, flow_id: str) -> tuple[Flow, str, Path] | None:
    found = _pr_head_flow(ctx, flow_id)
    if found is not None:
        return found
    registered = ctx.services.registry.get(ctx.event.repo, flow_id)
    if registered is None:
        return None
    mirror = ctx.services.mirror(ctx.event.repo, _clone_url(ctx), ctx.event.installation_id,
                                 want=registered.commit)
    return registered.flow, registered.commit, mirror


def _run(ctx: _Ctx, cmd: Command) -> None:
    services, repo = ctx.services, ctx.event.repo
    if services.runs is None:
        ctx.client.create_comment(ctx.number, RUNS_OFF.format(login=ctx.login))
        return
    found = _flow_to_run(ctx, cmd.target)
    if found is None:
        _unknown_flow(ctx, cmd.target)
        return
    flow, sha, mirror = found
    try:
        submission = services.runs.submit(
            flow, cmd.inputs, repo=repo, commit=sha, source=mirror,
            trigger=Trigger(TriggerType.MANUAL, ctx.login))
    except InputError as exc:
        ctx.client.create_comment(ctx.number, BAD_INPUT.format(
            login=ctx.login, flow_id=flow.id, name=exc.name, problem=exc.problem,
            expects=_expects(flow.inputs.get(exc.name))))
        return
    run_id = str(submission.run_id)
    RunReports(services.engine).add(RunReport(
        run_id, repo, ctx.event.installation_id, ctx.number, None, sha, flow.id))
    log.info("run submitted from a comment",
             extra={"run": run_id, "repo": repo, "flow": flow.id, "actor": ctx.login})
    report(services, run_id)


def _cancel(ctx: _Ctx, cmd: Command) -> None:
    services = ctx.services
    run = services.store.get_run(cmd.target)
    if run is None or run.repo != ctx.event.repo or services.runs is None:
        ctx.client.create_comment(ctx.number, UNKNOWN_RUN.format(login=ctx.login,
                                                                 run_id=cmd.target))
        return
    if services.runs.cancel(run.id):
        ctx.client.create_comment(ctx.number, CANCELLING.format(login=ctx.login, run_id=run.id))
        return
    ended = services.store.get_run(run.id) or run
    ctx.client.create_comment(ctx.number, ALREADY_OVER.format(
        login=ctx.login, run_id=run.id, status=ended.status.value))


def _unknown_flow(ctx: _Ctx, flow_id: str) -> None:
    known = sorted(f.flow.id for f in ctx.services.registry.list(ctx.event.repo))
    listing = KNOWN_FLOWS.format(flows=", ".join(f"`{k}`" for k in known)) if known else NO_FLOWS
    ctx.client.create_comment(ctx.number, UNKNOWN_FLOW.format(
        login=ctx.login, flow_id=flow_id, hint=did_you_mean(flow_id, known), known=listing))


def _pause(ctx: _Ctx, cmd: Command) -> None:
    try:
        ctx.services.schedules.pause(ctx.event.repo, cmd.target)
    except FlowNotFound:
        _unknown_flow(ctx, cmd.target)
        return
    ctx.services.wake_scheduler.set()
    ctx.client.create_comment(ctx.number, PAUSED.format(login=ctx.login, flow_id=cmd.target))


def _resume(ctx: _Ctx, cmd: Command) -> None:
    try:
        missed = ctx.services.schedules.resume(ctx.event.repo, cmd.target)
    except FlowNotFound:
        _unknown_flow(ctx, cmd.target)
        return
    ctx.services.wake_scheduler.set()
    ctx.client.create_comment(ctx.number, RESUMED.format(
        login=ctx.login, flow_id=cmd.target, missed=MISSED.format(count=missed) if missed else ""))


_ACTIONS = {Verb.RUN: _run, Verb.CANCEL: _cancel, Verb.PAUSE: _pause, Verb.RESUME: _resume}
