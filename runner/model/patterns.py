"""Input patterns from flow files, matched with a time limit.

An input's ``pattern`` is written by a flow's author and matched against
defaults at validation and against values any commenter types in ``/run``.
Python's ``re`` can backtrack for hours on patterns like ``(a|aa)+$``; the
``regex`` engine (re-compatible syntax) takes a timeout, so a hostile or
careless pattern costs at most :data:`MATCH_TIMEOUT` seconds per match and is
reported as a pattern to fix, never a hang. Pure: no I/O.
"""

from __future__ import annotations

from functools import lru_cache

import regex

MATCH_TIMEOUT = 0.1  # seconds; real patterns match typed values in microseconds


@lru_cache(maxsize=512)
def compiled(pattern: str) -> regex.Pattern[str] | None:
    """``pattern`` compiled, or None when it is not a valid regular expression."""
    try:
        return regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError, ValueError):
        return None


def compile_error(pattern: str) -> str | None:
    """Why ``pattern`` does not compile, or None when it does."""
    if compiled(pattern) is not None:
        return None  # cached: flows repeat the same few patterns
    try:
        regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def full_match(pattern: str, text: str, timeout: float = MATCH_TIMEOUT) -> bool | None:
    """Whether ``text`` matches ``pattern`` in full; None if that took over ``timeout``
    seconds (catastrophic backtracking). Raises ValueError for an invalid pattern."""
    compiled_pattern = compiled(pattern)
    if compiled_pattern is None:
        raise ValueError(compile_error(pattern) or "invalid pattern")
    try:
        return compiled_pattern.fullmatch(text, timeout=timeout) is not None
    except TimeoutError:
        return None
