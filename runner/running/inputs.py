"""Type-check run inputs before anything starts, and expose them to tasks.

Values arrive as strings (a ``/run`` comment, ``flowbot run -i``) or already
typed (a schedule trigger's YAML). :func:`coerce_inputs` turns them into typed
values or raises :class:`InputError` naming the input and what it expects.
An input that is neither given, nor required, nor defaulted is ``None`` and
reaches tasks as an empty string. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.errors import InputError
from runner.model import patterns
from runner.model.flows import InputSpec, InputType, repo_path_problem

REQUIRED = "required; no default"
UNKNOWN = "is unknown{hint}; {takes}"
SAME_BUT_CASE = " (did you mean {close!r}? input names are case-sensitive)"
EXPECTED_INT = "expected a whole number, got {value!r}"
EXPECTED_FLOAT = "expected a number, got {value!r}"
EXPECTED_BOOL = "expected true/false (also yes/no, 1/0), got {value!r}"
EXPECTED_CHOICE = "expected one of {choices}, got {value!r}"
EXPECTED_PATTERN = "expected text matching the pattern {pattern} in full, got {value!r}"
EXPECTED_STRING = "expected text, got {value!r}"
EXPECTED_FILE = "expected @path of a file in the repository, got {value!r}"
FILE_PATH = "{value!r} is {problem}"
PATTERN_TOO_SLOW = "pattern took too long to check; the flow's pattern needs fixing"
PATTERN_INVALID = "the flow's pattern {pattern} is not a valid regular expression: {error}"

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _to_int(spec: InputSpec, value: object) -> int:
    if isinstance(value, bool):
        raise InputError(spec.name, EXPECTED_INT.format(value=value))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise InputError(spec.name, EXPECTED_INT.format(value=value))
    return int(text)


def _to_float(spec: InputSpec, value: object) -> float:
    if isinstance(value, bool):
        raise InputError(spec.name, EXPECTED_FLOAT.format(value=value))
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        raise InputError(spec.name, EXPECTED_FLOAT.format(value=value)) from None
    if not math.isfinite(number):
        raise InputError(spec.name, EXPECTED_FLOAT.format(value=value))
    return number


def _to_bool(spec: InputSpec, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(spec.name, EXPECTED_BOOL.format(value=value))


def _to_choice(spec: InputSpec, value: object) -> str:
    text = str(value)
    if text not in spec.choices:
        choices = ", ".join(spec.choices)
        raise InputError(spec.name, EXPECTED_CHOICE.format(choices=choices, value=value))
    return text


def _to_string(spec: InputSpec, value: object) -> str:
    if isinstance(value, dict | list | tuple | set):
        raise InputError(spec.name, EXPECTED_STRING.format(value=value))
    text = "true" if value is True else "false" if value is False else str(value)
    if spec.pattern is None:
        return text  # any text will do
    try:
        matched = patterns.full_match(spec.pattern, text)
    except ValueError as exc:
        problem = PATTERN_INVALID.format(pattern=spec.pattern, error=exc)
        raise InputError(spec.name, problem) from None
    if matched is None:  # the engine gave up: a backtracking pattern, not a bad value
        raise InputError(spec.name, PATTERN_TOO_SLOW)
    if not matched:
        raise InputError(spec.name, EXPECTED_PATTERN.format(pattern=spec.pattern, value=text))
    return text


@dataclass(frozen=True)
class FileSource:
    """Where a file input's bytes come from, before the run is staged: a path of
    the repository at the run's commit (``repo_path``), or a file already on this
    machine (``local``: ``flowbot run -i name=@file``, a downloaded attachment).
    ``label`` says how it was given (shown on the run page)."""

    label: str
    repo_path: str | None = None
    local: Path | None = None


def _to_file(spec: InputSpec, value: object) -> FileSource:
    if isinstance(value, FileSource):
        return value  # a local file or an attachment, resolved by the caller
    if not isinstance(value, str):
        raise InputError(spec.name, EXPECTED_FILE.format(value=value))
    problem = repo_path_problem(value)
    if problem is not None:
        raise InputError(spec.name, FILE_PATH.format(value=value, problem=problem))
    path = value.removeprefix("@")
    return FileSource(label=f"@{path}", repo_path=path)


_COERCE: dict[InputType, Callable[[InputSpec, object], object]] = {
    InputType.INT: _to_int,
    InputType.FLOAT: _to_float,
    InputType.BOOL: _to_bool,
    InputType.CHOICE: _to_choice,
    InputType.STRING: _to_string,
    InputType.FILE: _to_file,
}


def _unknown(name: str, known: list[str]) -> InputError:
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    hint = ""
    if close and by_lower[close[0]].lower() == name.lower():
        hint = SAME_BUT_CASE.format(close=by_lower[close[0]])
    elif close:
        hint = f" (did you mean {by_lower[close[0]]!r}?)"
    takes = f"this flow takes: {', '.join(known)}" if known else "this flow takes no inputs"
    return InputError(name, UNKNOWN.format(hint=hint, takes=takes))


def coerce_inputs(specs: Mapping[str, InputSpec], given: Mapping[str, object]) -> dict[str, object]:
    """Typed values for every declared input, from ``given`` or defaults.

    Raises :class:`InputError` for the first unknown, missing or ill-typed input
    (unknown names are reported first, in sorted order).
    """
    for name in sorted(given):
        if name not in specs:
            raise _unknown(name, sorted(specs))
    values: dict[str, object] = {}
    for name, spec in specs.items():
        if name in given and given[name] is not None:
            values[name] = _COERCE[spec.type](spec, given[name])
        elif spec.default is not None:
            values[name] = _COERCE[spec.type](spec, spec.default)
        elif spec.required:
            raise InputError(name, REQUIRED)
        else:
            values[name] = None  # optional and not given: empty for tasks
    return values


def input_string(value: object) -> str:
    """How a typed input value reads in the environment and in templates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def input_env(values: Mapping[str, object]) -> dict[str, str]:
    """``INPUT_<NAME>`` variables (name upper-cased) for coerced input ``values``."""
    return {f"INPUT_{name.upper()}": input_string(value) for name, value in values.items()}
