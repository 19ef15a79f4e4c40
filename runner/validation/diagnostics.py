"""Positioned validation messages and the helpers that place them.

A :class:`Diagnostic` is what a person reads: ``file:line:col: severity:
message``. :class:`Reporter` collects them for one file, turning a data path
such as ``("tasks", 1, "commands")`` into both a position (from the loader)
and the ``tasks[1].commands`` prefix of the message.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from runner.loading.yamlload import Loaded, Path


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one file; errors fail validation, warnings do not."""

    path: str
    line: int
    col: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "severity": str(self.severity),
            "message": self.message,
        }


def dotted(path: Path) -> str:
    """``("tasks", 1, "env", "A")`` -> ``tasks[1].env.A``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


MAX_ERRORS = 200
FILE_SECONDS = 10.0
REPO_SECONDS = 60.0
TOO_MANY_ERRORS = (
    "more than {limit} problems in this file; validation stopped here, "
    "fix these and push again to see the rest"
)
OVER_TIME = (
    "validation of this file took longer than {seconds:g}s and was stopped; "
    "split the flow into smaller files or simplify it"
)
REPO_OVER_TIME = (
    "not validated: the repository's flow files took longer than {seconds:g}s in all; "
    "make the flows fewer or simpler"
)


class OverBudget(Exception):
    """Validation of one file must stop: too many problems, or out of time."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.line, self.col = line, col


@dataclass(frozen=True)
class Budget:
    """What validating untrusted flows may cost: seconds of work per file and for a
    whole repository, and problems found per file.

    ``clock`` is injected (monotonic seconds) so tests can run out of time at will."""

    seconds: float = FILE_SECONDS
    repo_seconds: float = REPO_SECONDS
    max_errors: int = MAX_ERRORS
    clock: Callable[[], float] = time.monotonic


@dataclass
class Reporter:
    """Collects diagnostics for one file, positioned via the loader's map.

    It also keeps the file's :class:`Budget`: :meth:`at` and :meth:`tick` raise
    :class:`OverBudget` once too many problems were found or time ran out."""

    file: str
    loaded: Loaded
    diagnostics: list[Diagnostic] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)
    deadline: float | None = None  # clock reading past which work stops; None: from now
    repo_deadline: float = float("inf")  # the same for all files of one repository
    # Findings to drop, by path and message: those about stand-ins of malformed parts.
    quiet: Callable[[Path, str], bool] | None = None

    def __post_init__(self) -> None:
        if self.deadline is None:
            self.deadline = self.budget.clock() + self.budget.seconds

    def tick(self) -> None:
        """Called between units of work; stops validation once time has run out."""
        now = self.budget.clock()
        if now > self.repo_deadline:
            raise OverBudget(REPO_OVER_TIME.format(seconds=self.budget.repo_seconds))
        if self.deadline is not None and now > self.deadline:
            raise OverBudget(OVER_TIME.format(seconds=self.budget.seconds))

    def at(
        self,
        path: Path,
        message: str,
        *,
        pos: Path | None = None,
        key: bool = False,
        severity: Severity = Severity.ERROR,
        offset: int | None = None,
    ) -> None:
        """Report ``message`` about ``path`` (the message prefix).

        The position is that of the value at ``pos`` (default: ``path``), or of
        its key with ``key=True``, or of character ``offset`` inside that string.
        """
        if self.quiet is not None and self.quiet(path, message):
            return  # about a malformed part the schema's messages already cover
        where = path if pos is None else pos
        if key:
            line, col = self.loaded.key_pos(where)
        elif offset is not None:
            line, col = self.inside(where, offset)
        else:
            line, col = self.loaded.value_pos(where)
        if len(self.diagnostics) >= self.budget.max_errors:
            raise OverBudget(TOO_MANY_ERRORS.format(limit=self.budget.max_errors), line, col)
        self.tick()
        prefix = dotted(path)
        text = _shortened(f"{prefix}: {message}" if prefix else message)
        self.diagnostics.append(Diagnostic(self.file, line, col, severity, text))

    def warn(self, path: Path, message: str) -> None:
        self.at(path, message, severity=Severity.WARNING)

    def inside(self, path: Path, offset: int) -> tuple[int, int]:
        """Position of character ``offset`` of the string at ``path``, when it can be found."""
        line, col = self.loaded.value_pos(path)
        value = _get(self.loaded.data, path)
        if not isinstance(value, str):
            return line, col
        style = self.loaded.block_style(path)
        if "\n" not in value[:offset] and style is None:
            source = self.loaded.lines[line - 1] if line <= len(self.loaded.lines) else ""
            quoted = col <= len(source) and source[col - 1] in "'\""
            return line, col + offset + (1 if quoted else 0)
        if style != "|":
            return line, col
        row = value.count("\n", 0, offset)
        start = value.rfind("\n", 0, offset) + 1
        content = value[start:].split("\n", 1)[0]
        source_line = line + 1 + row
        if source_line > len(self.loaded.lines):
            return line, col
        source = self.loaded.lines[source_line - 1]
        if not source.endswith(content):
            return line, col
        return source_line, len(source) - len(content) + (offset - start) + 1


MAX_MESSAGE = 1000  # characters: messages quote names from the file, which may be huge


def _shortened(text: str) -> str:
    """``text`` with its middle cut when too long, keeping where and what to do."""
    if len(text) <= MAX_MESSAGE:
        return text
    head, tail = MAX_MESSAGE * 2 // 3, MAX_MESSAGE // 3 - 3
    return f"{text[:head]} … {text[-tail:]}"


def _get(data: object, path: Path) -> object:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    return (diagnostic.path, diagnostic.line, diagnostic.col, diagnostic.message)
