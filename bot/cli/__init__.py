"""The ``flowbot`` command line. Each subcommand lives in its own module here
and contributes ``add_parser(subparsers)``; the parser's ``handler`` returns
the exit code (0 ok, 1 the checked thing failed, 2 usage or I/O error).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.cli import demo, run, schedules, serve, validate
from runner.errors import FlowbotError

_COMMANDS = (validate, run, serve, schedules, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowbot",
        description="GitOps orchestration bot: validate, schedule and run flows/*.yml.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except FlowbotError as exc:  # a setting or input the user can fix: no traceback
        print(f"flowbot {args.command}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
