"""Template references in flow strings: ``{{ inputs.x }}``, ``{{ secrets.X }}``,
``{{ tasks.<id>.outputs.<key> }}``, ``{{ run.id }}``, ``{{ trigger.scheduled_at }}``.

This module only finds references (pure). :mod:`runner.validation.validate` checks each
one statically; the engine renders them (``runner/running/render.py``), quoting values
so that a value can never break out of its shell word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# A reference is dotted words; task ids and output keys may contain '-'.
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_0-9][A-Za-z0-9_-]*)*)\s*$")

# What each root may be followed by; checked by runner.validation.validate.
ROOTS = ("inputs", "secrets", "tasks", "run", "trigger", "flow")
RUN_FIELDS = ("id", "url", "failed_task", "error", "commit")
TRIGGER_FIELDS = ("type", "scheduled_at", "actor")
FLOW_FIELDS = ("id",)


@dataclass(frozen=True)
class Reference:
    """One ``{{ ... }}`` occurrence: its dotted path, or ``path=()`` if malformed."""

    text: str  # the expression between the braces, stripped
    path: tuple[str, ...]
    start: int  # offset of "{{" in the string
    end: int  # offset just past "}}"

    @property
    def valid_syntax(self) -> bool:
        return bool(self.path)


def scan(value: str) -> list[Reference]:
    """Every template reference in ``value``, in order."""
    refs = []
    for start, end in _spans(value):
        inner = value[start + 2 : end - 2]
        expr = _EXPR.match(inner)
        path = tuple(expr.group(1).split(".")) if expr else ()
        refs.append(Reference(inner.strip(), path, start, end))
    return refs


def has_unclosed(value: str) -> bool:
    """True when ``{{`` appears without a closing ``}}`` (a likely typo)."""
    gaps, at = [], 0
    for start, end in _spans(value):
        gaps.append(value[at:start])
        at = end
    gaps.append(value[at:])
    return "{{" in "".join(gaps)


def _spans(value: str) -> Iterator[tuple[int, int]]:
    """Where ``_TEMPLATE`` matches, found in linear time: the regex retries its lazy
    scan from every "{{" when no "}}" follows, quadratic on "{{ {{ {{ ..." text
    (200,000 of them took minutes)."""
    at = value.find("{{")
    while at != -1:
        close = value.find("}}", at + 2)
        if close == -1:
            return  # no "}}" after this "{{", so none after any later one either
        yield at, close + 2
        at = value.find("{{", close + 2)
