"""Commands in issue and PR comments: ``/run``, ``/cancel``, ``/help``,
``/pause``, ``/resume``.

Acknowledged at once with 👀, then answered with at most one reply comment
holding the answers to all the comment's commands (at most
``FLOWBOT_COMMANDS_PER_COMMENT`` of them; the others are named as ignored).
The author's permission is checked before anything is answered: writers
(write, maintain, admin) get their commands carried out; anyone else gets one
reply with the help they asked for and a refusal, at most once per
``FLOWBOT_REFUSAL_WINDOW_SECONDS`` per user and issue.

``/run`` always runs the flow as registered from the default branch, at the
commit it was registered from, whether the comment is on an issue or on a
pull request (from a fork or not): nothing from an unmerged pull request ever
executes. A run is keyed by (delivery, command line), so a replayed delivery
finds the run it started and edits the reply it posted. A writer starts at most
``FLOWBOT_RUNS_PER_USER_PER_HOUR`` runs of a repository an hour (:mod:`bot.run_budget`);
over it the command's line in the reply says so and nothing runs.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot import run_budget
from bot.github.interfaces import GitHubError, RepoClient
from bot.handlers import attachments, render
from bot.handlers.command_parsing import (
    MAX_BODY_CHARS,
    Command,
    CommandError,
    ParsedComment,
    Verb,
    parse_comment,
)
from bot.handlers.command_replies import (
    REPLY_MARKER,
    CommandReplies,
    Part,
    comment_key,
    reply_body,
)
from bot.intake.router import Event, Router
from bot.services import Services
from runner.errors import FlowNotFound, InputError, SecretMissing
from runner.model.flows import Flow, InputType
from runner.state.records import Trigger, TriggerType
from runner.validation.diagnostics import did_you_mean

log = logging.getLogger(__name__)

router: Router[Services] = Router()

WRITERS = frozenset({"admin", "maintain", "write"})
REFUSED = ("Sorry @{login}, {verbs} {needs} write access to this repository; "
           "ask a maintainer to run it for you.")
UNKNOWN_FLOW = ("@{login} there is no flow `{flow_id}` registered from the default branch"
                "{hint}.\n\n{known}")
KNOWN_FLOWS = "Registered flows: {flows}."
NO_FLOWS = "No flows are registered yet: merge a `flows/*.yml` into the default branch first."
AFTER_MERGE = ("\n\nA flow added or changed in a pull request runs only once it is merged "
               "into the default branch.")
FROM_DEFAULT = ("@{login} `/run` runs flows as registered from the default branch, never "
                "this pull request's version: its changes run only after merge.")
BAD_INPUT = "@{login} cannot run `{flow_id}`: input `{name}` {problem}.{expects}"
EXPECTS = " It expects {kind}{extra}."
RUNS_OFF = "@{login} this flowbot does not run flows (no run service configured)."
NO_SECRET = (
    "@{login} cannot run `{flow_id}`: it needs secret(s) {names}, and this flowbot has no "
    "value for them, so no run was started. Whoever runs flowbot sets {variables} (or adds "
    "`NAME=value` lines to the file `FLOWBOT_SECRETS_FILE` names) and restarts it; then "
    "comment `/run {flow_id}` again."
)
UNKNOWN_RUN = "@{login} there is no run `{run_id}` of this repository."
CANCELLING = "@{login} cancelling run `{run_id}`."
ALREADY_OVER = "@{login} run `{run_id}` had already ended ({status})."
PAUSED = "@{login} paused the schedules of `{flow_id}`; `/resume {flow_id}` starts them again."
RESUMED = "@{login} resumed the schedules of `{flow_id}`{missed}."
MISSED = " ({count} slot(s) missed while paused are recorded as skipped)"
BAD_COMMAND = "@{login} line {line}: {message}"
IGNORED = ("@{login} ignored {count} more command line(s) ({lines}): at most {limit} "
           "commands are answered per comment.")
TRUNCATED = "Only the first {chars} characters of this comment were read."
BOT_MARKER = "<!-- flowbot:"


@dataclass(frozen=True)
class _Ctx:
    event: Event
    services: Services
    client: RepoClient
    login: str
    number: int
    key: str  # the comment's key in command_replies

    @property
    def on_pull(self) -> bool:
        return "pull_request" in self.event.payload["issue"]


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
    parsed = parse_comment(str(comment.get("body") or ""),
                           max(1, services.settings.commands_per_comment))
    if not parsed.commands:
        return  # an ordinary comment
    client = services.client(event.repo, event.installation_id)
    try:
        client.add_reaction(int(comment["id"]), "eyes")
    except GitHubError:  # the acknowledgement is a courtesy; the command still runs
        log.warning("could not react to a comment", extra={"repo": event.repo})
    ctx = _Ctx(event, services, client, str(comment["user"]["login"]),
               int(event.payload["issue"]["number"]), comment_key(event.repo, int(comment["id"])))
    if client.permission_of(ctx.login) in WRITERS:
        _answer(ctx, _writer_answers(ctx, parsed))
    else:
        _refuse(ctx, parsed)


# --- replies --------------------------------------------------------------

def _answer(ctx: _Ctx, parts: list[Part]) -> None:
    """Post the one reply (or edit the one a replayed delivery posted), then hand
    its runs to reporting."""
    replies = CommandReplies(ctx.services.engine)
    begun, reply_id = replies.begin(ctx.key, ctx.event.repo, ctx.number)
    if begun and reply_id is None:
        found = ctx.client.find_comment(ctx.number, REPLY_MARKER.format(key=ctx.key))
        reply_id = None if found is None else found.id  # posted just before a crash?
    body = reply_body(parts, ctx.key)
    if reply_id is None:
        reply_id = ctx.client.create_comment(ctx.number, body)
    else:
        ctx.client.edit_comment(reply_id, body)
    replies.save(ctx.key, ctx.event.repo, ctx.number, reply_id, parts)
    for part in parts:
        if part.run_id is not None:
            _report_to(ctx, part.run_id, reply_id)


def _report_to(ctx: _Ctx, run_id: str, reply_id: int) -> None:
    services = ctx.services
    run = services.store.get_run(run_id)
    if run is None:
        return  # removed meanwhile
    services.reporting.report_to_reply(run, ctx.event.installation_id, ctx.number, reply_id)


def _refuse(ctx: _Ctx, parsed: ParsedComment) -> None:
    """One reply to someone without write access: the help they asked for and a
    refusal of everything else, rate-limited per user and issue."""
    services = ctx.services
    window = timedelta(seconds=services.settings.refusal_window_seconds)
    replies = CommandReplies(services.engine)
    seen, reply_id = replies.begin(ctx.key, ctx.event.repo, ctx.number)
    if seen:  # a replayed delivery: answer only if the first try posted nothing
        marker = REPLY_MARKER.format(key=ctx.key)
        if reply_id is not None or ctx.client.find_comment(ctx.number, marker) is not None:
            return  # already answered
    elif not replies.claim_refusal(ctx.event.repo, ctx.number, ctx.login,
                                   services.clock.now(), window):
        log.info("refusal not repeated within the window",
                 extra={"repo": ctx.event.repo, "issue": ctx.number, "actor": ctx.login})
        return  # answered recently: a flood gets one reply per window
    parts = [Part(_help(ctx))] if any(c.verb is Verb.HELP for c in parsed.commands) else []
    refused = sorted({f"`/{c.verb}`" for c in parsed.commands if c.verb is not Verb.HELP})
    if refused:
        parts.append(Part(REFUSED.format(login=ctx.login, verbs=", ".join(refused),
                                         needs="needs" if len(refused) == 1 else "need")))
    reply_id = ctx.client.create_comment(ctx.number, reply_body(parts, ctx.key))
    replies.save(ctx.key, ctx.event.repo, ctx.number, reply_id, parts)


def _help(ctx: _Ctx) -> str:
    return render.help_text(max(1, ctx.services.settings.commands_per_comment))


def _writer_answers(ctx: _Ctx, parsed: ParsedComment) -> list[Part]:
    parts: list[Part] = []
    helped = False
    for cmd in parsed.commands:
        if isinstance(cmd, CommandError):
            parts.append(Part(BAD_COMMAND.format(login=ctx.login, line=cmd.line,
                                                 message=cmd.message)))
        elif cmd.verb is Verb.HELP:
            if not helped:
                parts.append(Part(_help(ctx)))  # once, however often it is asked
            helped = True
        else:
            parts.append(_ACTIONS[cmd.verb](ctx, cmd))
    if ctx.on_pull and any(p.run_id for p in parts):
        parts.insert(0, Part(FROM_DEFAULT.format(login=ctx.login)))
    if parsed.ignored_lines:
        lines = parsed.ignored_lines
        where = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}–{lines[-1]}"
        parts.append(Part(IGNORED.format(login=ctx.login, count=len(lines), lines=where,
                                         limit=len(parsed.commands))))
    if parsed.truncated:
        parts.append(Part(TRUNCATED.format(chars=MAX_BODY_CHARS)))
    return parts


# --- commands -------------------------------------------------------------

def _expects(spec: Any) -> str:
    if spec is None:
        return ""
    extra = f" (one of {', '.join(spec.choices)})" if spec.choices else ""
    if spec.pattern:
        extra += f" matching `{spec.pattern}`"
    return EXPECTS.format(kind=f"a {spec.type.value}", extra=extra)


def _request_key(ctx: _Ctx, cmd: Command) -> str | None:
    """What makes a replayed delivery find the run this command started."""
    if not ctx.event.delivery_id:
        return None  # no delivery id (not from a webhook): nothing to replay
    return f"{ctx.event.delivery_id}:{cmd.line}"


def _run(ctx: _Ctx, cmd: Command) -> Part:
    services, repo = ctx.services, ctx.event.repo
    if services.runs is None:
        return Part(RUNS_OFF.format(login=ctx.login))
    registered = services.registry.get(repo, cmd.target)
    if registered is None:
        return Part(_unknown_flow(ctx, cmd.target))  # PR-only flows included
    flow, sha = registered.flow, registered.commit
    key = _request_key(ctx, cmd)
    earlier = None if key is None else services.store.run_for_request(key)
    if earlier is None:  # a replayed delivery finds its run: that one is counted already
        try:
            run_budget.check(services, ctx.login, repo)
        except run_budget.OverBudget as exc:
            log.info("run refused: over the per-user budget",
                     extra={"repo": repo, "flow": flow.id, "actor": ctx.login})
            return Part(str(exc))
    mirror = services.mirror(repo, str(ctx.event.payload["repository"]["clone_url"]),
                             ctx.event.installation_id, want=sha)
    services.settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:  # attachments are downloaded next to the runs; the run keeps its own copy
        with tempfile.TemporaryDirectory(prefix="attachments-",
                                         dir=services.settings.data_dir) as folder:
            submission = services.runs.submit(
                flow, _attached_files(ctx, flow, cmd.inputs, Path(folder)), repo=repo,
                commit=sha, source=mirror, trigger=Trigger(TriggerType.MANUAL, ctx.login),
                request_key=key)
    except InputError as exc:
        return Part(BAD_INPUT.format(login=ctx.login, flow_id=flow.id, name=exc.name,
                                     problem=exc.problem,
                                     expects=_expects(flow.inputs.get(exc.name))))
    except SecretMissing as exc:
        return Part(NO_SECRET.format(
            login=ctx.login, flow_id=flow.id, names=", ".join(f"`{n}`" for n in exc.names),
            variables=", ".join(f"`FLOWBOT_SECRET_{n}`" for n in exc.names)))
    run = services.store.get_run(submission.run_id)
    assert run is not None
    log.info("run submitted from a comment",
             extra={"run": run.id, "repo": repo, "flow": flow.id, "actor": ctx.login,
                    "delivery": ctx.event.delivery_id})
    return Part(render.run_comment(run, services.store.task_rows(run.id),
                                   services.run_url(run.id)), run.id)


def _attached_files(ctx: _Ctx, flow: Flow, given: dict[str, str],
                    folder: Path) -> dict[str, object]:
    """``given`` with each file input holding a link downloaded: only a file
    attached on the configured GitHub host (``@path`` names a repository file)."""
    settings = ctx.services.settings
    values: dict[str, object] = dict(given)
    for name, value in given.items():
        spec = flow.inputs.get(name)
        url = attachments.link_in(value)
        if spec is None or spec.type is not InputType.FILE or url is None:
            continue  # not a file input, or not a link: checked with the other inputs
        token = ctx.services.clients.git_token(ctx.event.repo, ctx.event.installation_id)
        values[name] = attachments.fetch(
            name, url, web=attachments.web_base(settings.github_api_url),
            repo=ctx.event.repo, token=token, folder=folder,
            max_bytes=settings.input_file_max_bytes)
    return values


def _cancel(ctx: _Ctx, cmd: Command) -> Part:
    services = ctx.services
    run = services.store.get_run(cmd.target)
    if run is None or run.repo != ctx.event.repo or services.runs is None:
        return Part(UNKNOWN_RUN.format(login=ctx.login, run_id=cmd.target))
    if services.runs.cancel(run.id):
        return Part(CANCELLING.format(login=ctx.login, run_id=run.id))
    ended = services.store.get_run(run.id) or run
    return Part(ALREADY_OVER.format(login=ctx.login, run_id=run.id,
                                    status=ended.status.value))


def _unknown_flow(ctx: _Ctx, flow_id: str) -> str:
    known = sorted(f.flow.id for f in ctx.services.registry.list(ctx.event.repo))
    listing = KNOWN_FLOWS.format(flows=", ".join(f"`{k}`" for k in known)) if known else NO_FLOWS
    text = UNKNOWN_FLOW.format(login=ctx.login, flow_id=flow_id,
                               hint=did_you_mean(flow_id, known), known=listing)
    return text + (AFTER_MERGE if ctx.on_pull else "")


def _pause(ctx: _Ctx, cmd: Command) -> Part:
    try:
        ctx.services.schedules.pause(ctx.event.repo, cmd.target)
    except FlowNotFound:
        return Part(_unknown_flow(ctx, cmd.target))
    return Part(PAUSED.format(login=ctx.login, flow_id=cmd.target))


def _resume(ctx: _Ctx, cmd: Command) -> Part:
    try:
        missed = ctx.services.schedules.resume(ctx.event.repo, cmd.target)
    except FlowNotFound:
        return Part(_unknown_flow(ctx, cmd.target))
    return Part(RESUMED.format(login=ctx.login, flow_id=cmd.target,
                               missed=MISSED.format(count=missed) if missed else ""))


_ACTIONS = {Verb.RUN: _run, Verb.CANCEL: _cancel, Verb.PAUSE: _pause, Verb.RESUME: _resume}
