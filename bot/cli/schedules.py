"""`flowbot schedules`: every registered schedule, its next fire times (in its
timezone), last run and state, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.settings import Settings
from runner.clock import SystemClock
from runner.errors import FlowbotError
from runner.scheduling.schedule_view import schedule_rows
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from runner.state.db import connect

NO_SCHEDULES = "no schedules registered{where}"
COLUMNS = ("REPO", "FLOW", "TRIGGER", "STATE", "CRON", "TIMEZONE", "NEXT FIRES", "LAST RUN")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "schedules", help="list schedules with their next fire times, last run and state"
    )
    parser.add_argument("--repo", help="only this repository (owner/name)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--database-url", help="database to read (default: FLOWBOT_DATABASE_URL or the data dir)"
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    try:
        url = args.database_url or Settings.from_env().db_url
        engine = connect(url)
        rows = schedule_rows(SqlScheduleStore(engine, SystemClock()), args.repo)
    except FlowbotError as exc:
        print(f"flowbot schedules: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(NO_SCHEDULES.format(where=f" for {args.repo}" if args.repo else ""))
    else:
        print(_table(rows))
    return 0


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    nexts = ", ".join(moment[:16].replace("T", " ") for moment in row["next_fires"]) or "-"
    last = "-"
    if row["last_fire_at"]:
        last = f'{row["last_fire_at"][:16].replace("T", " ")} {row["last_run_id"] or ""}'.strip()
    return (row["repo"], row["flow_id"], row["trigger_id"], row["state"], row["cron"],
            row["timezone"], nexts, last)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
