"""Semantic checks of a flow's inputs and schedule triggers.

The schema fixes their shape; this module checks what it cannot: defaults and
trigger-given values match the input's type, choices and pattern; patterns
compile; cron expressions are valid and fire; timezones exist; DST surprises.
"""

from __future__ import annotations

import importlib
import re
import zoneinfo
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from runner.loading.yamlload import Path
from runner.model import patterns
from runner.model.flows import repo_path_problem
from runner.validation import schedule_facts
from runner.validation.diagnostics import Reporter, did_you_mean
from runner.validation.schema_messages import describe

WRONG_VALUE = 'expected {expected} for input "{name}" (type {type}), got {got}'
NOT_A_CHOICE = 'expected one of: {choices} for input "{name}", got {got}{hint}'
PATTERN_MISMATCH = 'input "{name}": {got} does not match its pattern {pattern}'
BAD_PATTERN = "pattern {pattern} is not a valid regular expression: {error}"
PATTERN_TOO_SLOW = (
    "pattern {pattern} took too long to check {got} (catastrophic backtracking); "
    "rewrite it so no part can match the same text in several ways, e.g. (a+)+ as a+"
)
PATTERN_TOO_BIG = (
    "pattern {pattern} requires more than {limit:,} repetitions (nested counts multiply); "
    "use smaller counts or ranges like {{1,64}}"
)
MAX_PATTERN_REPEATS = 1000
CHOICES_NOT_CHOICE = 'choices only apply to inputs of type choice (this one is "{type}")'
CHOICE_WITHOUT_CHOICES = "an input of type choice needs a list of choices"
PATTERN_NOT_STRING = 'pattern only applies to inputs of type string (this one is "{type}")'
FILE_PATH_OUTSIDE = (
    'input "{name}": {got} is {problem}; give a path like data/revenue.csv'
)
UNKNOWN_TRIGGER_INPUT = 'no input named "{name}" is declared under inputs{hint}'
MISSING_TRIGGER_INPUT = (
    'input "{name}" is required and has no default; give it under this trigger\'s inputs'
)
DUPLICATE_TRIGGER = (
    'trigger id "{id}" is already used by triggers[{first}]; give each trigger an id'
)
BAD_CRON = "invalid cron expression: {problem}"
NEVER_FIRES = '"{cron}" never fires (no such date in the calendar)'
UNKNOWN_TZ = 'unknown timezone "{tz}"; use an IANA name like Europe/Berlin or UTC{hint}'

# Python's own regular-expression parser (no stubs; stable since 3.11) and its repeats.
_parser: Any = importlib.import_module("re._parser")
_REPEATS = frozenset(
    getattr(importlib.import_module("re._constants"), name, None)
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
) - {None}

_EXPECTED: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "string": ("text", lambda v: isinstance(v, str)),
    "int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "choice": ("text", lambda v: isinstance(v, str)),
    "file": ("a path of a file in the repository", lambda v: isinstance(v, str)),
}


class ValueProblem(NamedTuple):
    """What is wrong with a value; ``at_pattern`` when the input's pattern is to blame."""

    message: str
    at_pattern: bool = False


def value_problem(name: str, spec: dict[str, Any], value: Any) -> ValueProblem | None:
    """What is wrong with ``value`` for the input ``name`` declared as ``spec``."""
    kind = spec["type"]
    words, accepts = _EXPECTED[kind]
    if not accepts(value):
        got = describe(value)
        return ValueProblem(WRONG_VALUE.format(expected=words, name=name, type=kind, got=got))
    if kind == "file":
        return _file_problem(name, value)
    choices = spec.get("choices")
    if kind == "choice" and choices and value not in choices:
        hint = did_you_mean(value, choices)
        return ValueProblem(NOT_A_CHOICE.format(
            choices=", ".join(choices), name=name, got=describe(value), hint=hint
        ))
    pattern = spec.get("pattern")
    if kind != "string" or not pattern or not _valid(pattern):
        return None  # no pattern to match (a bad one is reported at the pattern)
    matched = patterns.full_match(pattern, value)
    if matched is None:
        return ValueProblem(PATTERN_TOO_SLOW.format(pattern=pattern, got=describe(value)), True)
    if not matched:
        got = describe(value)
        return ValueProblem(PATTERN_MISMATCH.format(name=name, got=got, pattern=pattern))
    return None


def _file_problem(name: str, value: str) -> ValueProblem | None:
    """A file input's default or trigger value names a file of the repository."""
    problem = repo_path_problem(value)
    if problem is None:
        return None
    return ValueProblem(FILE_PATH_OUTSIDE.format(name=name, got=describe(value), problem=problem))


def _valid(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    if _required_repeats(pattern) > MAX_PATTERN_REPEATS:
        return False  # never handed to the regex engine, which would expand it
    return patterns.compiled(pattern) is not None


def _required_repeats(pattern: str) -> int:
    """How many copies of its parts ``pattern`` requires, nested counts multiplied
    (``(a{1000}){1000}``: 1,000,000). The ``regex`` engine expands required
    repetitions when it compiles: that one took 260 MB, one more level all memory.
    Counted on Python's parse (already known to succeed), which expands nothing."""
    try:
        return _size(_parser.parse(pattern).data)
    except (re.error, RecursionError, OverflowError):
        return MAX_PATTERN_REPEATS + 1


def _size(items: Any) -> int:
    total = 0
    for op, arg in items:
        if op in _REPEATS:
            least, _most, sub = arg
            total += max(least, 1) * _size(sub.data)
        else:
            total += 1 + sum(_size(sub.data) for sub in _subpatterns(arg))
        if total > MAX_PATTERN_REPEATS:
            return total  # enough to refuse; do not multiply further
    return total


def _subpatterns(arg: Any) -> Iterator[Any]:
    """The parsed sub-patterns inside one node's argument (groups, branches, asserts)."""
    if hasattr(arg, "data"):
        yield arg
    elif isinstance(arg, tuple | list):
        for item in arg:
            yield from _subpatterns(item)


def _report_value(
    report: Reporter, where: Path, name: str, spec: dict[str, Any], value: Any
) -> None:
    problem = value_problem(name, spec, value)
    if problem is not None:
        report.at(("inputs", name, "pattern") if problem.at_pattern else where, problem.message)


def check_inputs(data: dict[str, Any], report: Reporter) -> None:
    for name, spec in (data.get("inputs") or {}).items():
        report.tick()
        path = ("inputs", name)
        kind = spec["type"]
        if "choices" in spec and kind != "choice":
            report.at((*path, "choices"), CHOICES_NOT_CHOICE.format(type=kind))
        if kind == "choice" and "choices" not in spec:
            report.at(path, CHOICE_WITHOUT_CHOICES)
        if "pattern" in spec:
            _check_pattern(spec, path, report)
        if "default" in spec:
            _report_value(report, (*path, "default"), name, spec, spec["default"])


def _check_pattern(spec: dict[str, Any], path: tuple[str, str], report: Reporter) -> None:
    if spec["type"] != "string":
        report.at((*path, "pattern"), PATTERN_NOT_STRING.format(type=spec["type"]))
    try:
        re.compile(spec["pattern"])
    except (re.error, RecursionError, OverflowError) as exc:
        error = str(exc) or type(exc).__name__
        report.at((*path, "pattern"), BAD_PATTERN.format(pattern=spec["pattern"], error=error))
        return
    repeats = _required_repeats(spec["pattern"])
    if repeats > MAX_PATTERN_REPEATS:
        message = PATTERN_TOO_BIG.format(
            pattern=spec["pattern"], limit=MAX_PATTERN_REPEATS)
        report.at((*path, "pattern"), message)
        return
    problem = patterns.compile_error(spec["pattern"])  # matching uses the regex engine
    if problem is not None:
        report.at((*path, "pattern"), BAD_PATTERN.format(pattern=spec["pattern"], error=problem))


def check_triggers(data: dict[str, Any], report: Reporter, now: datetime) -> None:
    inputs: dict[str, Any] = data.get("inputs") or {}
    required = [  # once per flow, not once per trigger
        name for name, spec in inputs.items() if spec.get("required") and "default" not in spec
    ]
    seen: dict[str, int] = {}
    for index, trigger in enumerate(data.get("triggers") or []):
        report.tick()
        path = ("triggers", index)
        trigger_id = trigger.get("id", "schedule")
        if trigger_id in seen:
            where = (*path, "id") if "id" in trigger else path
            report.at(where, DUPLICATE_TRIGGER.format(id=trigger_id, first=seen[trigger_id]))
        seen.setdefault(trigger_id, index)
        _check_trigger_inputs(trigger, inputs, required, path, report)
        _check_schedule(trigger, path, report, now)


def _check_trigger_inputs(
    trigger: dict[str, Any],
    inputs: dict[str, Any],
    required: list[str],
    path: tuple[str, int],
    report: Reporter,
) -> None:
    given: dict[str, Any] = trigger.get("inputs") or {}
    for name, value in given.items():
        where = (*path, "inputs", name)
        if name not in inputs:
            hint = did_you_mean(name, inputs)
            report.at(where, UNKNOWN_TRIGGER_INPUT.format(name=name, hint=hint), key=True)
            continue
        _report_value(report, where, name, inputs[name], value)
    for name in required:
        if name not in given:
            report.at(path, MISSING_TRIGGER_INPUT.format(name=name))


def _check_schedule(
    trigger: dict[str, Any], path: tuple[str, int], report: Reporter, now: datetime
) -> None:
    expr, tz = trigger["cron"], trigger.get("timezone", "UTC")
    tz_ok = _zone_exists(tz)
    if not tz_ok:
        hint = did_you_mean(tz, _zone_names())
        report.at((*path, "timezone"), UNKNOWN_TZ.format(tz=tz, hint=hint))
    problem = schedule_facts.cron_problem(expr)
    if problem is not None:
        report.at((*path, "cron"), BAD_CRON.format(problem=problem))
        return
    if not tz_ok:
        return  # fire times need a real timezone
    fires, warnings = schedule_facts.schedule_facts(expr, tz, now)
    if not fires:
        report.at((*path, "cron"), NEVER_FIRES.format(cron=expr))
    for warning in warnings:
        report.warn((*path, "cron"), warning)


def _zone_exists(tz: str) -> bool:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@cache
def _zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())
