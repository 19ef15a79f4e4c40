"""Pure parsing of commands in issue and PR comments.

A command counts only at the start of a line (leading spaces allowed), never
inside quoted text (``> /run x``) or fenced code blocks. Values may be quoted
shell-style: ``/run deploy env=prod "note=two words"``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from enum import StrEnum


class Verb(StrEnum):
    RUN = "run"
    CANCEL = "cancel"
    HELP = "help"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True)
class Command:
    """One parsed command line."""

    verb: Verb
    target: str = ""  # flow id or run id
    inputs: dict[str, str] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class CommandError:
    """A line that starts with a known verb but cannot be understood."""

    verb: Verb
    message: str
    line: int = 0


USAGE = {
    Verb.RUN: "/run <flow-id> [key=value ...]",
    Verb.CANCEL: "/cancel <run-id>",
    Verb.HELP: "/help",
    Verb.PAUSE: "/pause <flow-id>",
    Verb.RESUME: "/resume <flow-id>",
}

MISSING_TARGET = "`{verb}` needs {what}: `{usage}`"
BAD_QUOTES = "could not read `{text}`: {problem} (close the quotes)"
BAD_PAIR = "`{token}` is not `key=value`: `{usage}`"
EXTRA_ARGS = "`{verb}` takes one argument: `{usage}`"


def _lines_outside_code(body: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, raw in enumerate(body.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, raw.lstrip()))
    return lines


def _verb_of(line: str) -> Verb | None:
    if not line.startswith("/"):
        return None  # commands only at the start of a line
    word = line[1:].split(maxsplit=1)[0] if len(line) > 1 else ""
    try:
        return Verb(word.lower())
    except ValueError:
        return None


def _parse_line(verb: Verb, text: str, number: int) -> Command | CommandError:
    usage = USAGE[verb]
    try:
        tokens = shlex.split(text)[1:]
    except ValueError as exc:
        return CommandError(verb, BAD_QUOTES.format(text=text, problem=exc), number)
    if verb is Verb.HELP:
        return Command(verb, line=number)
    if not tokens:
        what = "a run id" if verb is Verb.CANCEL else "a flow id"
        message = MISSING_TARGET.format(verb=f"/{verb}", what=what, usage=usage)
        return CommandError(verb, message, number)
    target, rest = tokens[0], tokens[1:]
    if verb is not Verb.RUN and rest:
        return CommandError(verb, EXTRA_ARGS.format(verb=f"/{verb}", usage=usage), number)
    inputs: dict[str, str] = {}
    for token in rest:
        key, sep, value = token.partition("=")
        if not sep or not key:
            return CommandError(verb, BAD_PAIR.format(token=token, usage=usage), number)
        inputs[key] = value
    return Command(verb, target, inputs, number)


def parse_commands(body: str) -> list[Command | CommandError]:
    """Every command in a comment body, in order."""
    found: list[Command | CommandError] = []
    for number, line in _lines_outside_code(body or ""):
        verb = _verb_of(line)
        if verb is None:
            continue  # ordinary text
        found.append(_parse_line(verb, line, number))
    return found
