"""Pure parsing of commands in issue and PR comments.

A command counts only at the start of a line (leading spaces allowed), never
inside quoted text (``> /run x``) or fenced code blocks. Values may be quoted
shell-style: ``/run deploy env=prod "note=two words"``.

Parsing is bounded so that any comment costs little: only the first
:data:`MAX_BODY_CHARS` characters are read, only the first ``max_commands``
command lines are parsed (the others are counted, not parsed), and a command
line longer than :data:`MAX_LINE_CHARS` is an error, not a shell-split.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

MAX_BODY_CHARS = 65536  # GitHub's own comment limit; a longer body is not read further
MAX_LINE_CHARS = 2048  # a command line longer than this is refused unparsed
MAX_COMMANDS = 10  # default cap on commands parsed per comment


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
TOO_LONG = "this `{verb}` line is longer than {limit} characters and was not read; shorten it"


@dataclass(frozen=True)
class ParsedComment:
    """The commands of one comment, within the parsing bounds."""

    commands: list[Command | CommandError]
    ignored_lines: list[int] = field(default_factory=list)  # command lines past the cap
    truncated: bool = False  # the body was longer than MAX_BODY_CHARS; the rest was not read


def _lines_outside_code(body: str) -> Iterator[tuple[int, str]]:
    fenced = False
    for number, raw in enumerate(body.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, raw.lstrip()


def _verb_of(line: str) -> Verb | None:
    if not line.startswith("/"):
        return None  # commands only at the start of a line
    head = line[1:16].split(maxsplit=1)  # verbs are short: never split a whole long line
    word = head[0] if head else ""
    try:
        return Verb(word.lower())
    except ValueError:
        return None


def _parse_line(verb: Verb, text: str, number: int) -> Command | CommandError:
    usage = USAGE[verb]
    if len(text) > MAX_LINE_CHARS:
        return CommandError(verb, TOO_LONG.format(verb=f"/{verb}", limit=MAX_LINE_CHARS),
                            number)
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


def parse_comment(body: str, max_commands: int = MAX_COMMANDS) -> ParsedComment:
    """The first ``max_commands`` commands of a comment body, in order, and the line
    numbers of the command lines past them (counted within the first
    :data:`MAX_BODY_CHARS` characters only)."""
    text = body or ""
    found: list[Command | CommandError] = []
    ignored: list[int] = []
    for number, line in _lines_outside_code(text[:MAX_BODY_CHARS]):
        verb = _verb_of(line)
        if verb is None:
            continue  # ordinary text
        if len(found) >= max_commands:
            ignored.append(number)  # past the cap: named in the reply, never parsed
            continue
        found.append(_parse_line(verb, line, number))
    return ParsedComment(found, ignored, len(text) > MAX_BODY_CHARS)


def parse_commands(body: str, max_commands: int = MAX_COMMANDS) -> list[Command | CommandError]:
    """The first ``max_commands`` commands in a comment body, in order."""
    return parse_comment(body, max_commands).commands
