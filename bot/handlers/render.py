"""Pure rendering of what flowbot posts: sticky validation comments, run reply
comments, status descriptions and help text. No I/O; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.handlers.log_excerpts import (
    BODY_BUDGET,
    TaskExcerpt,
    excerpts_markdown,
    neutralise,
)
from runner.model.flows import Flow
from runner.scheduling.cron import fire_times
from runner.scheduling.registry import Plan
from runner.state.records import RunRecord, Status, TaskRow
from runner.validation.diagnostics import Diagnostic, Severity
from runner.validation.validate import FileReport

VALIDATE_MARKER = "<!-- flowbot:validate -->"
RUN_MARKER = "<!-- flowbot:run:{run_id} -->"
FAILURE_MARKER = "<!-- flowbot:failure:{flow_id} -->"
FIRE_TIMES_SHOWN = 3
STATUS_MAX = 140  # GitHub truncates status descriptions


def _code(text: str) -> str:
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def _cell(text: str) -> str:
    """Text from a run (errors, reasons) on one table line, pinging and linking nothing."""
    return neutralise(str(text)).replace("|", "\\|").replace("\n", " ")


def _errors(file: FileReport) -> list[Diagnostic]:
    return [d for d in file.diagnostics if d.severity is Severity.ERROR]


def _verdict(file: FileReport) -> str:
    errors = len(_errors(file))
    warnings = len(file.diagnostics) - errors
    if errors:
        return f"❌ invalid ({errors} error{'s' if errors != 1 else ''})"
    flow = f" — flow {_code(file.flow.id)}" if file.flow is not None else ""
    note = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    return f"✅ valid{note}{flow}"


def _schedule_lines(flows: Sequence[Flow], now: datetime) -> list[str]:
    lines: list[str] = []
    for flow in flows:
        for trig in flow.triggers:
            if not trig.enabled:
                lines.append(f"- {_code(flow.id)} / {_code(trig.id)}: disabled")
                continue
            times = fire_times(trig.cron, trig.timezone, now, FIRE_TIMES_SHOWN)
            local = [t.astimezone(ZoneInfo(trig.timezone)).strftime("%Y-%m-%d %H:%M %Z")
                     for t in times]
            shown = ", ".join(local) if local else "never fires"
            lines.append(
                f"- {_code(flow.id)} / {_code(trig.id)} ({_code(trig.cron)}, "
                f"{trig.timezone}): {shown}"
            )
    return lines


def _plan_lines(plan: Plan | None, default_branch: str) -> list[str]:
    if plan is None:
        return ["_No plan: fix the errors above first (or flow ids collide)._"]
    lines = [f"**If merged** (compared with what is registered from `{default_branch}`):"]
    for label, ids in (("added", plan.added), ("changed", plan.changed),
                       ("removed", plan.removed)):
        if ids:
            lines.append(f"- {label}: " + ", ".join(_code(i) for i in ids))
    if not plan.has_changes:
        lines.append("- no change to the registered flows")
    return lines


def validation_comment(
    files: Sequence[FileReport], summary: str, plan: Plan | None,
    default_branch: str, sha: str, now: datetime,
) -> str:
    """The sticky PR comment: verdicts, every diagnostic, the plan, next fire times."""
    lines = [VALIDATE_MARKER, f"### flowbot: {summary}", "", f"Checked at `{sha[:12]}`.", ""]
    if not files:
        lines += ["No `flows/*.yml` files in this commit.", ""]
    else:
        lines += ["| file | verdict |", "| --- | --- |"]
        lines += [f"| {_cell(_code(f.path))} | {_cell(_verdict(f))} |" for f in files]
        lines.append("")
    problems = [d for f in files for d in f.diagnostics]
    if problems:
        lines.append("**Problems**")
        lines += [f"- {_code(f'{d.path}:{d.line}:{d.col}')} {d.severity.value}: {d.message}"
                  for d in problems]
        lines.append("")
    lines += _plan_lines(plan, default_branch)
    valid = [f.flow for f in files if f.flow is not None and not _errors(f)]
    schedule = _schedule_lines(valid, now)
    if schedule:
        lines += ["", "**Next fire times**", *schedule]
    return "\n".join(lines) + "\n"


def status_text(text: str) -> str:
    """A status description cut to what GitHub keeps."""
    text = " ".join(text.split())
    return text if len(text) <= STATUS_MAX else text[: STATUS_MAX - 1] + "…"


_ICON = {
    Status.QUEUED: "⏳", Status.RUNNING: "🔄", Status.SUCCESS: "✅", Status.FAILED: "❌",
    Status.CANCELLED: "⛔", Status.TIMED_OUT: "⌛", Status.SKIPPED: "⏭️",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def run_comment(
    run: RunRecord, tasks: Sequence[TaskRow], url: str,
    excerpts: Sequence[TaskExcerpt] = (), budget: int = BODY_BUDGET,
) -> str:
    """The run's reply comment, edited in place as the run progresses; once it has
    ended, what its tasks printed (``excerpts``, within ``budget`` characters)."""
    status = Status(run.status)
    lines = [
        RUN_MARKER.format(run_id=run.id),
        f"### {_ICON.get(status, '')} Run [{run.id}]({url}) of {_code(run.flow_id)}: "
        f"{status.value}",
        "",
    ]
    if run.commit:
        lines += [f"Commit `{run.commit[:12]}`.", ""]
    if run.error:
        lines += [f"> {_cell(run.error)}", ""]
    lines += ["| task | state | duration | exit code | attempts |",
              "| --- | --- | --- | --- | --- |"]
    for t in tasks:
        code = "–" if t.exit_code is None else str(t.exit_code)
        state = Status(t.status)
        lines.append(f"| {_cell(_code(t.task_id))} | {_ICON.get(state, '')} {state.value} "
                     f"| {_duration(t.duration)} | {code} | {t.attempts} |")
    shown = excerpts_markdown(excerpts, budget - sum(len(line) + 1 for line in lines) - 200)
    if shown:
        lines += ["", shown]
    lines += ["", f"[Full logs]({url})"]
    return "\n".join(lines) + "\n"


HELP = """\
**flowbot commands** (at the start of a line; writers only for all but `/help`):
- `/run <flow-id> [key=value ...]` — run a flow as registered from the default branch (a pull
  request's changes run only after merge); quote values with spaces: `"note=two words"`
- `/cancel <run-id>` — cancel a run
- `/pause <flow-id>` / `/resume <flow-id>` — stop or restart a flow's schedules
- `/help` — this message

One reply per comment, answering up to {max_commands} commands (more are named as ignored).
"""


def help_text(max_commands: int) -> str:
    """The ``/help`` answer, naming the per-comment command cap."""
    return HELP.format(max_commands=max_commands)
