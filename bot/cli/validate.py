"""`flowbot validate [PATH ...]`: check flow files, compiler-style.

Exit codes: 0 all valid (warnings allowed), 1 some file invalid, 2 usage or
I/O error (e.g. a path that does not exist). ``--plan`` adds, for every
schedule trigger of a valid flow, its next fire times in its timezone.
``--backend NAME`` also refuses what that backend cannot honour (``network:
none`` on swarm, a pool other than ``default`` on docker) and, for docker and
swarm, a ``resources.cpus`` / ``resources.memory`` above the operator's bounds
(``FLOWBOT_TASK_MAX_CPUS`` / ``FLOWBOT_TASK_MAX_MEMORY``, read from the
environment or ``FLOWBOT_CONFIG`` as ``flowbot serve`` and ``flowbot run`` read
them), as pull-request validation does for the bot's configured backend.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from runner.backends import BACKENDS
from runner.backends.fit import Target
from runner.clock import SystemClock
from runner.errors import FlowbotError
from runner.model.flows import Flow
from runner.scheduling import cron
from runner.validation.validate import Diagnostic, RepoReport, validate_paths

DEFAULT_DIR = Path("flows")
PLAN_COUNT = 5
NO_DEFAULT_DIR = "flowbot validate: no flows/ directory here; give the files or directories"
MISSING_PATH = "flowbot validate: {path}: no such file or directory"
BAD_NOW = "flowbot validate: --now {value!r} is not an ISO 8601 date-time"
BAD_SETTINGS = "flowbot validate: {error}"
EXIT_CODES = ("exit codes: 0 every file valid (warnings allowed), 1 some file invalid, "
              "2 usage or I/O error (e.g. a path that does not exist)")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "validate",
        help="check flow files (default: flows/) and report file:line:col problems",
        description="Check flow files against the flow schema and semantic rules.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or directories")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text")
    parser.add_argument(
        "--plan", action="store_true", help=f"show the next {PLAN_COUNT} fire times of schedules"
    )
    parser.add_argument("--now", help="ISO date-time to plan from (default: the current time)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="also check what this backend can honour (network: none, pool:, "
                             "resources within FLOWBOT_TASK_MAX_CPUS / FLOWBOT_TASK_MAX_MEMORY "
                             "for docker and swarm)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    now = _parse_now(args.now)
    if now is None:
        print(BAD_NOW.format(value=args.now), file=sys.stderr)
        return 2
    paths: list[Path] = args.paths or [DEFAULT_DIR]
    missing = [p for p in paths if not p.exists()]
    if missing:
        message = NO_DEFAULT_DIR if not args.paths else MISSING_PATH.format(path=missing[0])
        print(message, file=sys.stderr)
        return 2
    try:
        target = _target(args.backend)
    except FlowbotError as exc:  # a malformed FLOWBOT_TASK_MAX_* (or config file)
        print(BAD_SETTINGS.format(error=exc), file=sys.stderr)
        return 2
    report = validate_paths(paths, now=now, target=target)
    plan = _plan(report.flows, now) if args.plan else []
    if args.format == "json":
        print(json.dumps(_json(report, plan), indent=2))
    else:
        for diagnostic in report.diagnostics:
            print(_github(diagnostic) if args.format == "github" else str(diagnostic))
        for line in _plan_text(plan):
            print(line)
        print(report.summary())
    return 0 if report.ok else 1


def _target(backend: str | None) -> Target | None:
    """The backend to check against, with the operator's task bounds from the settings
    (read only when a backend is named, and its bounds only where it applies them)."""
    if backend is None:
        return None  # backend-neutral: the flow files alone
    from bot.settings import Settings  # here: plain validation loads no database code

    return Target.named(backend, Settings.from_env().task_limits)


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return SystemClock().now()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _escape(text: str, *, prop: bool = False) -> str:
    """GitHub workflow-command escaping (properties also escape ':' and ',')."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _github(d: Diagnostic) -> str:
    return (
        f"::{d.severity} file={_escape(d.path, prop=True)},line={d.line},col={d.col}"
        f"::{_escape(d.message)}"
    )


def _plan(flows: list[Flow], now: datetime) -> list[dict[str, Any]]:
    entries = []
    for flow in sorted(flows, key=lambda f: f.id):
        for trigger in flow.triggers:
            zone = ZoneInfo(trigger.timezone)
            times = cron.fire_times(trigger.cron, trigger.timezone, now, PLAN_COUNT)
            entries.append(
                {
                    "flow": flow.id,
                    "trigger": trigger.id,
                    "cron": trigger.cron,
                    "timezone": trigger.timezone,
                    "enabled": trigger.enabled,
                    "next": [t.astimezone(zone) for t in times],
                }
            )
    return entries


def _plan_text(plan: list[dict[str, Any]]) -> list[str]:
    lines = []
    for entry in plan:
        state = "" if entry["enabled"] else " (disabled)"
        lines.append(
            f"plan: {entry['flow']} / {entry['trigger']}: "
            f"{entry['cron']} in {entry['timezone']}{state}"
        )
        for local in entry["next"]:
            lines.append(f"  {local:%a %Y-%m-%d %H:%M %Z} (UTC {local.astimezone(UTC):%H:%M})")
    return lines


def _json(report: RepoReport, plan: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "summary": report.summary(),
        "files": [
            {
                "path": f.path,
                "ok": f.ok,
                "flow": f.flow.id if f.flow else None,
                "diagnostics": [d.as_dict() for d in f.diagnostics],
            }
            for f in report.files
        ],
        "plan": [{**e, "next": [t.isoformat() for t in e["next"]]} for e in plan],
    }
