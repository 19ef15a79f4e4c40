"""What ``/flows/<owner>/<repo>/<flow_id>`` shows, as plain data: the flow's source
on GitHub, its triggers with their next fire times and DST notes, a page of its
runs (keyset: newest first, ``before`` a run id), and the Run form's fields built
from the typed inputs. Reads only; :mod:`bot.web.flow_page` serves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import and_, or_, select

from bot.services import Services
from bot.web.timefmt import exact, iso, relative
from runner.model.flows import Flow, InputSpec, InputType
from runner.scheduling import cron
from runner.scheduling.registry import RegisteredFlow
from runner.scheduling.schedule_store import Schedule
from runner.state.records import RunRecord
from runner.state.run_tables import run_record, runs

PAGE_RUNS = 20  # runs per page of a flow's history
UPCOMING = 3  # next fire times per trigger
DST_DAYS = 366  # how far ahead DST notes look
DST_NOTES = 4  # at most, per trigger


@dataclass(frozen=True)
class Moment:
    relative: str
    title: str  # exact, in the trigger's timezone and in UTC
    iso: str  # UTC, for <time datetime> (shown in the browser's zone)


@dataclass(frozen=True)
class TriggerLine:
    trigger_id: str
    cron: str
    timezone: str
    state: str  # active, paused, disabled
    next_fires: list[Moment]
    dst_notes: list[str]
    last_fire: Moment | None


@dataclass(frozen=True)
class RunLine:
    run_id: str
    status: str
    trigger: str
    created: Moment
    duration: str


@dataclass(frozen=True)
class RunsPage:
    runs: list[RunLine]
    older: str | None  # ``before`` of the next page, None on the last


@dataclass(frozen=True)
class Field:
    """One input of the Run form (``kind``: select, checkbox, text, number, file)."""

    name: str
    kind: str
    required: bool
    value: str
    choices: tuple[str, ...]
    hint: str
    error: str | None = None


def github_links(services: Services, repo: str, registered: RegisteredFlow) -> dict[str, str]:
    """The flow file and its commit on GitHub's web host (Enterprise included)."""
    web = f"{services.settings.github_web_url}/{quote(repo)}"
    commit = quote(registered.commit)
    return {"file": f"{web}/blob/{commit}/{quote(registered.path)}",
            "commit": f"{web}/commit/{commit}", "short": registered.commit[:12]}


def moment(at: datetime, now: datetime, tz: str = "UTC") -> Moment:
    title = exact(at, tz) if tz == "UTC" else f"{exact(at, tz)} · {exact(at)}"
    return Moment(relative(at, now), title, iso(at))


def _upcoming(expr: str, tz: str, first: datetime | None, now: datetime) -> list[datetime]:
    start = first or cron.next_fire(expr, tz, now)
    if start is None:
        return []  # never fires (e.g. 30 February)
    return [start, *cron.fire_times(expr, tz, start, UPCOMING - 1)]


def _trigger(flow: Flow, index: int, row: Schedule | None, now: datetime) -> TriggerLine:
    trigger = flow.triggers[index]
    expr, tz = cron.expand(trigger.cron), trigger.timezone
    paused = row.paused if row is not None else False
    enabled = row.enabled if row is not None else trigger.enabled
    state = "paused" if paused else "active" if enabled else "disabled"
    fires = _upcoming(expr, tz, row.next_fire_at if row else None, now) \
        if state == "active" else []
    last = row.last_fire_at if row is not None else None
    return TriggerLine(trigger.id, trigger.cron, tz, state,
                       [moment(at, now, tz) for at in fires],
                       cron.dst_warnings(expr, tz, now, DST_DAYS)[:DST_NOTES],
                       moment(last, now, tz) if last else None)


def trigger_lines(services: Services, repo: str, flow: Flow) -> list[TriggerLine]:
    """Each schedule trigger of ``flow`` as stored (paused, next fire) or as declared."""
    rows = {row.trigger_id: row for row in services.schedules.list(repo)
            if row.flow_id == flow.id}
    now = services.clock.now()
    return [_trigger(flow, i, rows.get(t.id), now) for i, t in enumerate(flow.triggers)]


def _run_line(run: RunRecord, now: datetime) -> RunLine:
    took = (f"{(run.finished_at - run.started_at).total_seconds():.1f}s"
            if run.started_at and run.finished_at else "–")
    return RunLine(run.id, str(run.status), f"{run.trigger.type} · {run.trigger.actor}",
                   moment(run.created_at, now), took)


def runs_page(services: Services, repo: str, flow_id: str, before: str | None) -> RunsPage:
    """Newest first, :data:`PAGE_RUNS` at a time, from just after run ``before``
    (keyset on (created_at, id): as fast on the thousandth page as on the first)."""
    query = (runs.select().where(runs.c.repo == repo, runs.c.flow_id == flow_id)
             .order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(PAGE_RUNS + 1))
    with services.engine.connect() as conn:
        if before:
            anchor = conn.execute(select(runs.c.created_at).where(
                runs.c.id == before, runs.c.repo == repo, runs.c.flow_id == flow_id)).first()
            if anchor is not None:  # an unknown id shows the newest page
                query = query.where(or_(runs.c.created_at < anchor[0], and_(
                    runs.c.created_at == anchor[0], runs.c.id < before)))
        found = [run_record(row) for row in conn.execute(query)]
    now = services.clock.now()
    older = found[PAGE_RUNS - 1].id if len(found) > PAGE_RUNS else None
    return RunsPage([_run_line(run, now) for run in found[:PAGE_RUNS]], older)


_KINDS = {InputType.CHOICE: "select", InputType.BOOL: "checkbox", InputType.INT: "number",
          InputType.FLOAT: "number", InputType.FILE: "file"}


def _hint(spec: InputSpec) -> str:
    parts = [spec.description] if spec.description else []
    parts.append(spec.type.value + (" matching " + spec.pattern if spec.pattern else ""))
    if spec.default is not None and spec.type is not InputType.FILE:
        parts.append(f"default {_text(spec.default)}")
    return " · ".join(parts)


def _text(value: object) -> str:
    """A value as typed in a form or a flow file: booleans as ``true``/``false``."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _shown(spec: InputSpec, given: dict[str, Any]) -> str:
    """The field's value: what was posted, else the default."""
    if spec.name in given and spec.type is not InputType.FILE:
        return str(given[spec.name])
    return "" if spec.default is None else _text(spec.default)


def form_fields(flow: Flow, given: dict[str, Any] | None = None,
                errors: dict[str, str] | None = None) -> list[Field]:
    """The Run form's fields, refilled with ``given`` and showing ``errors`` by input."""
    given, errors = given or {}, errors or {}
    return [Field(spec.name, _KINDS.get(spec.type, "text"), spec.required,
                  _shown(spec, given), spec.choices, _hint(spec), errors.get(spec.name))
            for spec in flow.inputs.values()]
