"""`flowbot validate` (placeholder until its feature lands)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("validate", help="(not available yet)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    print("flowbot validate: not available in this build", file=sys.stderr)
    return 2
