"""Safe YAML loading that remembers where every node came from.

One event builder reads every flow file from the parser's event stream
(PyYAML's C parser when it is built, the pure-Python one otherwise) and
builds the data itself rather than through PyYAML's constructors. That
gives us, in one pass:

- the 1-based ``(line, col)`` of every mapping key, value and sequence item;
- YAML 1.2 core scalars only (``true``/``false``, ints, floats, null); forms
  that YAML 1.1 tools read differently (``on``/``yes``/``no``, ``010``,
  ``1:30``) are reported at their position with "quote it" advice;
- refusal of anchors, aliases, explicit tags and several documents;
- bounds on size and nesting, so hostile input fails fast with a clear,
  positioned :class:`Problem` instead of a traceback or a hang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from runner.loading import yamlscalars

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

TOO_BIG = "file is {size} bytes; flow files may be at most {limit} bytes"
BAD_UTF8 = "file is not valid UTF-8 (byte 0x{byte:02x} at offset {offset}); save it as UTF-8"
TAB_INDENT = "tab character used for indentation; indent with spaces"
TOO_DEEP = "nesting deeper than {limit} levels; flow files are never this deep"
ANCHOR = 'anchors ("&{name}") are not supported in flow files; repeat the value instead'
ALIAS = 'aliases ("*{name}") are not supported in flow files; repeat the value instead'
TAG = 'YAML tags ("{tag}") are not supported in flow files; remove the tag'
MULTI_DOC = (
    "a second YAML document starts here; a flow file holds exactly one flow "
    "(remove the '---' line or split the file)"
)
EMPTY = "file is empty; a flow is a mapping with at least `id` and `tasks`"
NOT_MAPPING = "the file must be a mapping (id: ..., tasks: ...), not {what}"
COMPLEX_KEY = (
    'keys must be plain text, not {what}; text that starts with "{{" or "[" '
    '(like {{{{ inputs.x }}}}) or contains ": " must be quoted'
)
SYNTAX = "invalid YAML: {problem}"
UNCLOSED_QUOTE = "invalid YAML: the quoted text starting here is never closed"
PLAIN_COLON = (
    'invalid YAML: this unquoted text contains ": ", which YAML reads as "key: value"; '
    "quote the whole text ('...', with any ' inside doubled) or write it as a | block"
)
PLAIN_BRACES = (
    'invalid YAML: this unquoted text starts with "{{", which YAML reads as a mapping; '
    "quote the whole text (\"{{ ... }}\") or write it as a | block"
)
CONTROL_CHAR = "control character U+{code:04X} is not allowed in a flow file; remove it"
DUPLICATE_KEY = 'duplicate key "{key}" (first defined on line {line}); a key may appear once'
NON_TEXT_KEY = 'unquoted key `{text}` is read as {what}; keys must be text, quote it: "{text}":'

_KINDS: dict[type, str] = {
    bool: "a boolean", int: "a number", float: "a number", type(None): "null"
}
# Plain scalars starting with anything else are text in YAML 1.1 and 1.2 alike.
_MAYBE_TYPED = frozenset("0123456789+-.~yYnNoOtTfF")

Path = tuple[str | int, ...]
Pos = tuple[int, int]


@dataclass(frozen=True)
class Problem:
    """Something wrong with the YAML itself, at a 1-based line and column."""

    line: int
    col: int
    message: str


@dataclass
class Loaded:
    """The result of :func:`load`: ``data`` is None when loading failed outright.

    ``values``, ``keys`` and ``blocks`` map data paths to where each value
    starts, where each mapping key is, and ``'|'`` or ``'>'`` for block scalars."""

    data: Any
    problems: list[Problem] = field(default_factory=list)
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)
    blocks: dict[Path, str] = field(default_factory=dict)
    text: str = field(default="", repr=False, compare=False)

    @cached_property
    def lines(self) -> list[str]:
        """The file's lines (of the text that loaded; none if loading failed outright)."""
        return self.text.splitlines()

    def value_pos(self, path: Path) -> Pos:
        """Position of the value at ``path``, or of its nearest known ancestor."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def key_pos(self, path: Path) -> Pos:
        """Position of the key naming ``path``; its value's position for list items."""
        return self.keys.get(path) or self.value_pos(path)

    def block_style(self, path: Path) -> str | None:
        """``'|'`` or ``'>'`` if the value at ``path`` is a block scalar."""
        return self.blocks.get(path)


class _Fatal(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(line, col, message)


def _pos(mark: Any) -> Pos:
    return (mark.line + 1, mark.column + 1)


def decode(data: bytes | str) -> str:
    """Text of a flow file; raises :class:`_Fatal` for oversize or non-UTF-8 input."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise _Fatal(1, 1, TOO_BIG.format(size=size, limit=MAX_BYTES))
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise _Fatal(line, col, BAD_UTF8.format(byte=data[exc.start], offset=exc.start)) from None


_LEADING_TAB = re.compile(r"^[ ]*\t")


def load(data: bytes | str) -> Loaded:
    """Parse one flow file. Never raises for bad input: problems are in the result."""
    try:
        text = decode(data)
        loaded = Loaded(data=None, text=text)
        loaded.data = _Builder(text, loaded).run()
    except _Fatal as fatal:
        return Loaded(data=None, problems=[fatal.problem])
    except yaml.MarkedYAMLError as exc:
        return Loaded(data=None, problems=[_syntax_problem(exc, loaded.lines)])
    except yaml.reader.ReaderError as exc:
        return Loaded(data=None, problems=[_reader_problem(exc, text)])
    except yaml.YAMLError as exc:  # anything else the parser reports, unpositioned
        return Loaded(data=None, problems=[Problem(1, 1, SYNTAX.format(problem=exc))])
    return loaded


def _reader_problem(exc: yaml.reader.ReaderError, text: str) -> Problem:
    before = text[: exc.position]
    line = before.count("\n") + 1
    col = exc.position - (before.rfind("\n") + 1) + 1
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return Problem(line, col, CONTROL_CHAR.format(code=ord(char)))


def _syntax_problem(exc: yaml.MarkedYAMLError, lines: list[str]) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = _pos(mark) if mark is not None else (1, 1)
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    tab = _LEADING_TAB.match(source)
    if tab is not None:
        return Problem(line, tab.end(), TAB_INDENT)
    for where in (exc.context_mark, exc.problem_mark):  # the quote's line, then the error's
        row = where.line + 1 if where is not None else 0
        plain = _plain_text_problem(lines[row - 1]) if 0 < row <= len(lines) else None
        if plain is not None:
            return Problem(row, plain[0], plain[1])
    if exc.context_mark is not None and "quoted scalar" in (exc.context or ""):
        return Problem(*_pos(exc.context_mark), UNCLOSED_QUOTE)
    if "maximum nesting depth" in (exc.problem or ""):  # libyaml's own bound, hit first
        return Problem(line, col, TOO_DEEP.format(limit=MAX_DEPTH))
    problem = exc.problem or "malformed"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    if "mapping values are not allowed" in problem:
        problem += '; a value containing ": " must be quoted'
    return Problem(line, col, SYNTAX.format(problem=problem))


# A line's unquoted text: after list dashes, after a "key: " (plain keys only).
_LINE_TEXT = re.compile(r"^(\s*(?:-\s+)*)(?:([A-Za-z0-9_.-]+):\s+)?(.*)$")
_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_.-]+:(?:\s|$)")


def _plain_text_problem(source: str) -> tuple[int, str] | None:
    """Where and why a line's unquoted text broke the YAML: it holds ": " (read as
    "key: value") or starts with "{{" (read as a mapping). A command line such as
    ``- awk '{print "Total: " s}' data.csv`` otherwise gets a riddle about quotes."""
    match = _LINE_TEXT.match(source)
    if match is None:
        return None
    text = match.group(3).rstrip()
    col = match.start(3) + 1
    if text.startswith("{{"):
        return col, PLAIN_BRACES
    if not text or text[0] in "'\"{[|>&*!#" or _SIMPLE_KEY.match(text):
        return None  # quoted, a block, a flow collection, or a mapping item ("- id: x")
    if ": " in text or text.endswith(":"):
        return col, PLAIN_COLON
    return None


_ALIAS = yaml.AliasEvent
_SCALAR = yaml.ScalarEvent
_SEQUENCE = yaml.SequenceStartEvent
_SEQUENCE_END = yaml.SequenceEndEvent
_MAPPING_END = yaml.MappingEndEvent


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


class _Builder:
    """Turns the event stream into data, recording positions and problems."""

    def __init__(self, text: str, loaded: Loaded) -> None:
        self._parser = _Loader(text)
        self._next = self._parser.get_event
        self._out = loaded
        self._values = loaded.values

    def run(self) -> Any:
        try:
            return self._document()
        finally:
            self._parser.dispose()

    def _document(self) -> Any:
        self._next()  # StreamStart
        event = self._next()
        if isinstance(event, yaml.StreamEndEvent):
            raise _Fatal(1, 1, EMPTY)
        root_event = self._next()
        root = self._node(root_event, (), 1)
        self._next()  # DocumentEnd
        event = self._next()
        if isinstance(event, yaml.DocumentStartEvent):
            raise _Fatal(*_pos(event.start_mark), MULTI_DOC)
        if root is None:
            raise _Fatal(*_pos(root_event.start_mark), EMPTY)
        if not isinstance(root, dict):
            what = "a list" if isinstance(root, list) else f"a single value ({root!r:.40})"
            raise _Fatal(*_pos(root_event.start_mark), NOT_MAPPING.format(what=what))
        return root

    def _node(self, event: Any, path: Path, depth: int) -> Any:
        mark = event.start_mark
        self._values[path] = start = (mark.line + 1, mark.column + 1)
        kind = type(event)
        if kind is _ALIAS:
            raise _Fatal(*start, ALIAS.format(name=event.anchor))
        if event.anchor is not None:
            raise _Fatal(*start, ANCHOR.format(name=event.anchor))
        if kind is _SCALAR:
            if event.tag is not None and event.tag != "!" and not event.implicit[0]:
                raise _Fatal(*start, TAG.format(tag=_short_tag(event.tag)))
            text = event.value
            if event.style or (text and text[0] not in _MAYBE_TYPED):
                return self._scalar(event, path, start) if event.style else text
            return self._scalar(event, path, start)
        if event.tag is not None and event.tag != "!":
            raise _Fatal(*start, TAG.format(tag=_short_tag(event.tag)))
        if depth > MAX_DEPTH:
            raise _Fatal(*start, TOO_DEEP.format(limit=MAX_DEPTH))
        if kind is _SEQUENCE:
            return self._sequence(path, depth)
        return self._mapping(path, depth)

    def _scalar(self, event: Any, path: Path, start: Pos) -> Any:
        if event.style:  # quoted or block: always text
            if event.style in ("|", ">"):
                self._out.blocks[path] = event.style
            return event.value
        value, problem = yamlscalars.resolve(event.value)
        if problem:
            self._out.problems.append(Problem(*start, problem))
        return value

    def _sequence(self, path: Path, depth: int) -> list[Any]:
        items: list[Any] = []
        event = self._next()
        while type(event) is not _SEQUENCE_END:
            items.append(self._node(event, (*path, len(items)), depth + 1))
            event = self._next()
        return items

    def _mapping(self, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        event = self._next()
        while type(event) is not _MAPPING_END:
            key = self._key(event, depth)
            value_event = self._next()
            child = (*path, key)
            if key in result:
                first = self._out.keys[child][0]
                self._out.problems.append(
                    Problem(*_pos(event.start_mark), DUPLICATE_KEY.format(key=key, line=first))
                )
                self._node(value_event, (*path, f"{key} (again)"), depth + 1)
            else:
                mark = event.start_mark
                self._out.keys[child] = (mark.line + 1, mark.column + 1)
                result[key] = self._node(value_event, child, depth + 1)
            event = self._next()
        return result

    def _key(self, event: Any, depth: int) -> str:
        if type(event) is _SCALAR and event.style:  # quoted keys are always text
            return str(event.value)
        start = _pos(event.start_mark)
        if type(event) is not _SCALAR:
            value = self._node(event, ("(key)",), depth + 1)
            what = "a list" if isinstance(value, list) else "a mapping"
            row = self._out.lines[start[0] - 1] if start[0] <= len(self._out.lines) else ""
            plain = _plain_text_problem(row)
            if plain is not None and plain[1] == PLAIN_BRACES:  # `- {{ inputs.cmd }}`
                raise _Fatal(start[0], plain[0], PLAIN_BRACES)
            raise _Fatal(*start, COMPLEX_KEY.format(what=what))
        value, problem = yamlscalars.resolve(event.value, key=True)
        if problem is None and not isinstance(value, str):
            problem = NON_TEXT_KEY.format(text=event.value, what=_KINDS[type(value)])
        if problem is not None:
            self._out.problems.append(Problem(*start, problem))
        return str(event.value)
