"""Plain (unquoted) YAML scalars, resolved by the YAML 1.2 core schema.

flowbot reads ``yes``, ``on`` and ``010`` the way YAML 1.2 does (text, text,
ten), but GitHub, editors and most YAML 1.1 libraries read them as ``true``,
``true`` and eight. A file that means different things to different tools is
a trap, so :func:`resolve` reports each such form with advice to quote it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

# Forms that only YAML 1.1 gives a non-text meaning.
_BOOL11 = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_OCTAL11 = re.compile(r"^[-+]?0[0-9]+$")
_SEXAGESIMAL11 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_UNDERSCORE11 = re.compile(r"^[-+]?[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?$")

BOOL_VALUE = (
    'unquoted `{text}` is read as a boolean by YAML 1.1 tools; write "{text}" in quotes '
    "for text, or true/false for a boolean"
)
BOOL_KEY = 'unquoted key `{text}` is read as a boolean by YAML 1.1 tools; quote it: "{text}":'
OCTAL = (
    "unquoted `{text}` is read as an octal number by YAML 1.1 tools; write {plain} "
    'for the number, or "{text}" in quotes for text'
)
SEXAGESIMAL = (
    "unquoted `{text}` is read as a base-60 number by YAML 1.1 tools; "
    'quote it: "{text}"'
)
UNDERSCORE = (
    "unquoted `{text}` is read as a number by YAML 1.1 tools but as text by YAML 1.2; "
    'write {plain} for the number, or "{text}" in quotes for text'
)


_WORDS: dict[str, Any] = {
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
}
_NUMERIC_START = frozenset("0123456789+-.")
_SPECIAL_START = _NUMERIC_START | frozenset("yYnNoO")


def resolve(text: str, *, key: bool = False) -> tuple[Any, str | None]:
    """The value of a plain scalar, and a problem message for YAML 1.1-only forms."""
    if len(text) > _CACHED_LENGTH:
        return _resolve(text, key)
    return _resolve_cached(text, key)


# Values are immutable and flows repeat the same short ones (``2``, ``10m``, ``5s``);
# long text is rarely repeated and would make the cache large.
_CACHED_LENGTH = 40


@lru_cache(maxsize=4096)
def _resolve_cached(text: str, key: bool) -> tuple[Any, str | None]:
    return _resolve(text, key)


def _resolve(text: str, key: bool) -> tuple[Any, str | None]:
    if text in _WORDS:
        return _WORDS[text], None
    if text[0] not in _SPECIAL_START:
        return text, None  # most scalars are words: no regex needed
    problem = _problem_11(text, key)
    if problem is not None:
        return text, problem
    if text[0] not in _NUMERIC_START:
        return text, None  # e.g. "needs", "yesterday": words, not numbers
    return _core(text), None


def _problem_11(text: str, key: bool) -> str | None:
    # Most plain scalars are words; skip the regexes for them.
    if len(text) > 3 and not text[0].isdigit() and text[0] not in "+-":
        return None
    if _BOOL11.match(text):
        return (BOOL_KEY if key else BOOL_VALUE).format(text=text)
    if _OCTAL11.match(text):
        plain = text.lstrip("+-").lstrip("0") or "0"
        return OCTAL.format(text=text, plain=("-" if text.startswith("-") else "") + plain)
    if _SEXAGESIMAL11.match(text):
        return SEXAGESIMAL.format(text=text)
    if _UNDERSCORE11.match(text):
        return UNDERSCORE.format(text=text, plain=text.replace("_", ""))
    return None


def _core(text: str) -> Any:
    if _INT10.match(text):
        return int(text)
    if _INT8.match(text):
        return int(text[2:], 8)
    if _INT16.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text
