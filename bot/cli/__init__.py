"""The ``flowbot`` command line. Each subcommand lives in its own module here
and contributes ``add_parser(subparsers)``; the parser's ``handler`` returns
the exit code (0 ok, 1 the checked thing failed, 2 usage or I/O error).

Only the module of the subcommand given is imported: ``flowbot validate`` runs
on every commit under pre-commit and must not pay for SQLAlchemy, docker or the
web stack. The others appear in ``--help`` through their one-line help here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from runner.errors import FlowbotError

# name -> one-line help; the module bot.cli.<name> adds the full parser when chosen
COMMANDS = {
    "validate": "check flow files (default: flows/) and report file:line:col problems",
    "run": "run a flow locally, as the bot would",
    "serve": "serve GitHub webhooks, run pages and the scheduler",
    "schedules": "list schedules with their next fire times, last run and state",
    "demo": "the whole loop on the template repo, without GitHub",
    "doctor": "check the database, Docker, GitHub credentials, webhook secret and public URL",
}


class _Version(argparse.Action):
    """``--version``: read from the package metadata only when asked (it costs an import)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = f"flowbot {version('flowbot')}"
        except PackageNotFoundError:  # a source tree that was never installed
            text = "flowbot (version unknown: not installed)"
        print(text)
        parser.exit()


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the full arguments of the subcommand named in ``argv`` only."""
    parser = argparse.ArgumentParser(
        prog="flowbot",
        description="GitOps orchestration bot: validate, schedule and run flows/*.yml.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    for name, summary in COMMANDS.items():
        if name == chosen:
            importlib.import_module(f"bot.cli.{name}").add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(words).parse_args(words)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # migrations run on every start; their INFO lines are noise
        logging.getLogger("alembic").setLevel(logging.WARNING)
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
