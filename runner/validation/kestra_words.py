"""Kestra's words for what flowbot calls otherwise, for did-you-mean and for
showing a list of ``- id:`` inputs in flowbot's mapping form.

People come to flowbot from Kestra, whose inputs are a list of items with an
``id``, ``type: SELECT`` and ``values``; flowbot's are a mapping by name with
``type: choice`` and ``choices``. The messages answer in the author's own terms.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runner.loading import yamlscalars

KEYS = {"values": "choices", "defaults": "default", "options": "choices"}
TYPES = {
    "SELECT": "choice", "ENUM": "choice", "STRING": "string", "INT": "int",
    "INTEGER": "int", "FLOAT": "float", "NUMBER": "float", "BOOLEAN": "bool",
    "BOOL": "bool", "FILE": "file", "STR": "string",
}
LIST_OF_INPUTS = (
    "; inputs are a mapping from each input's name to its spec, not a list of "
    '"- id:" items; write them as {shown}'
)
SHOWN_INPUTS = 3
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ ./-]*$")


def suggest_key(key: str, known: list[str]) -> str:
    """`` (did you mean "choices"?)`` for a Kestra key flowbot names otherwise."""
    word = KEYS.get(key)
    return f' (did you mean "{word}"?)' if word in known else ""


def suggest_value(value: Any, allowed: list[str]) -> str:
    """`` (did you mean "choice"?)`` for a Kestra type such as ``SELECT``."""
    word = TYPES.get(str(value).upper()) if isinstance(value, str) else None
    if word is None and isinstance(value, str) and value.lower() in allowed:
        word = value.lower()
    return f' (did you mean "{word}"?)' if word in allowed else ""


def inputs_as_mapping(items: list[Any], types: list[str]) -> str:
    """The advice for ``inputs:`` written as a list: the author's own inputs in
    flowbot's form, e.g. ``inputs: {region: {type: choice, choices: [eu, us]}}``;
    a type flowbot lacks (``types`` are its own) is shown as ``string``."""
    specs = [_spec(item, types) for item in items if isinstance(item, dict) and "id" in item]
    if not specs:
        specs = ["region: {type: choice, choices: [eu, us]}"]
    shown = "inputs: {" + ", ".join(specs[:SHOWN_INPUTS])
    shown += ", ...}" if len(specs) > SHOWN_INPUTS else "}"
    return LIST_OF_INPUTS.format(shown=shown)


def _spec(item: dict[str, Any], types: list[str]) -> str:
    kind = item.get("type")
    kind = TYPES.get(kind.upper(), kind.lower()) if isinstance(kind, str) else "string"
    fields = [f"type: {_flow(kind if kind in types else 'string')}"]
    for key, value in item.items():
        key = KEYS.get(key, key)
        if key in ("choices", "default", "required", "description"):
            fields.append(f"{key}: {_flow(value)}")
    return f"{_flow(item['id'])}: {{{', '.join(fields)}}}"


def _flow(value: Any) -> str:
    """``value`` in YAML's flow style, quoting text only where it needs it."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value[:10]) + (", ...]" if len(value) > 10
                                                                   else "]")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and _PLAIN.match(value) and len(value) <= 40:
        read, problem = yamlscalars.resolve(value)
        if read == value and problem is None:
            return value  # reads back as the same text, in YAML 1.1 and 1.2 alike
    return json.dumps(value if not isinstance(value, dict) else "...")[:60]
