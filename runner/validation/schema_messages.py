"""JSON Schema errors rewritten as plain sentences at the offending node.

``schemas/flow.schema.json`` is the one definition of the flow syntax; this
module runs it (Draft 2020-12, compiled once) and turns each jsonschema error
into a sentence a person can act on: unknown keys with a suggestion, missing
keys, wrong types, enums, patterns explained in words. For ``oneOf``/``anyOf``
it picks the branch the author evidently meant instead of dumping them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from runner.loading.yamlload import Path
from runner.validation import kestra_words, schema_fast
from runner.validation.diagnostics import Reporter, did_you_mean

if TYPE_CHECKING:  # jsonschema is imported on the first invalid file only: valid ones never
    # need it, and `flowbot validate` under pre-commit pays its import on every commit
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

# A link to schemas/flow.schema.json in the source tree, so that a built wheel
# carries the schema inside the package (setuptools copies the file it points at).
SCHEMA_PATH = FsPath(__file__).parent / "flow.schema.json"

UNKNOWN_KEY = 'unknown key "{key}"{hint}'
MISSING_KEY = 'missing required key "{key}"'
WRONG_TYPE = "expected {expected}, got {got}"
NOT_IN_ENUM = "expected one of: {choices} (got {got}){hint}"
NOT_CONST = "expected {expected} (got {got})"
BOTH_COMMANDS_SCRIPT = "give either commands or script, not both"
NEITHER_COMMANDS_SCRIPT = "give either commands (a list of shell lines) or script, not neither"
EMPTY = "must not be empty"
DUPLICATE_ITEM = "{item} is listed more than once"
TOO_SMALL = "must be at least {limit} (got {got})"
TOO_LARGE = "must be at most {limit} (got {got})"
NOT_POSITIVE = "must be greater than {limit} (got {got})"
COLON_HINT = ' (YAML reads unquoted text containing ": " as a mapping; quote the text)'
NO_MATCH = "{value} does not match the pattern {pattern}"
TOO_MANY = "{count} {noun}; {limit}{advice}"
TOO_LONG = "is {got:,} characters long; at most {limit:,} are allowed here"
_TOO_MANY_WORDS = {  # top-level list -> (noun, limit sentence, what to do)
    "tasks": ("tasks", "a flow may have at most {limit} tasks",
              "; split it into several smaller flows"),
    "errors": ("errors tasks", "a flow may have at most {limit} errors tasks",
               "; let fewer tasks do the clean-up"),
    "triggers": ("triggers", "a flow may have at most {limit} triggers",
                 "; combine schedules or split the flow"),
}

DURATION_PATTERN = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
POOL_PATTERN = "^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$"  # a node label value, lowercase
_ID_RULE = 'must be 1 to 64 lowercase letters, digits, "-" or "_", starting with a letter or digit'
PATTERN_RULES = {
    "^[a-z0-9][a-z0-9_-]{0,63}$": _ID_RULE,
    "^[a-z_][a-z0-9_]{0,63}$": (
        'must be 1 to 64 lowercase letters, digits or "_", starting with a letter or "_"'
    ),
    "^[A-Z_][A-Z0-9_]{0,127}$": (
        'must be UPPER_CASE letters, digits or "_", not starting with a digit'
    ),
    "^[A-Za-z_][A-Za-z0-9_]*$": 'must be letters, digits or "_", not starting with a digit',
    DURATION_PATTERN: "is not a duration; write it like 90s, 10m or 1h30m",
    "^[0-9]+(\\.[0-9]+)?[kmgKMG]?$": (
        "is not a memory size; write a number with an optional unit k, m or g, like 512m or 2g"
    ),
    "^/": 'must be an absolute path (starting with "/")',
    POOL_PATTERN: (
        'is not a pool name: 1 to 63 lowercase letters, digits, "-", "_" or ".", '
        "starting and ending with a letter or digit, like gpu or big-mem"
    ),
}

_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "nothing",
}
_PLURALS = {"string": "strings", "object": "mappings", "integer": "whole numbers"}


@cache
def schema() -> dict[str, Any]:
    """The flow schema, read once from ``schemas/flow.schema.json``."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _unique_items(
    validator: Any, on: bool, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """uniqueItems in linear time: jsonschema compares unsortable items (mappings,
    mixed types) pairwise, which a list of 100,000 mappings turns into hours."""
    if not on or not validator.is_type(instance, "array"):
        return
    if len({schema_fast.json_identity(item) for item in instance}) != len(instance):
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"{instance!r} has non-unique elements")


@cache
def validator() -> Draft202012Validator:
    """The flow schema as a jsonschema validator, compiled once on first use."""
    from jsonschema import Draft202012Validator, validators

    extended = validators.extend(Draft202012Validator, {"uniqueItems": _unique_items})
    Draft202012Validator.check_schema(schema())
    built: Draft202012Validator = extended(schema())
    return built


@cache
def fast_check() -> schema_fast.Check:
    return schema_fast.compile_schema(schema())


def check(data: Any, report: Reporter) -> None:
    """Report every schema violation in ``data`` as a plain sentence."""
    if fast_check()(data):
        return  # valid: skip jsonschema, which only earns its cost explaining errors
    if _too_many(data, report):
        return  # a flow over the size limits is not worth explaining item by item
    for error in validator().iter_errors(data):
        _explain(error, report)


def _too_many(data: Any, report: Reporter) -> bool:
    """Report top-level lists longer than their ``maxItems``, at the first item too many."""
    found = False
    properties: dict[str, Any] = schema()["properties"]
    for name, (noun, sentence, advice) in _TOO_MANY_WORDS.items():
        items = data.get(name) if isinstance(data, dict) else None
        limit = properties[name].get("maxItems")
        if isinstance(items, list) and limit is not None and len(items) > limit:
            message = TOO_MANY.format(
                count=len(items), noun=noun, limit=sentence.format(limit=limit), advice=advice
            )
            report.at((name,), message, pos=(name, limit))
            found = True
    return found


def describe(value: Any) -> str:
    """A short, human name for a YAML value: ``text "abc"``, ``the number 3``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {json.dumps(shown)}"
    return "a list" if isinstance(value, list) else "a mapping"


def expected(schema: dict[str, Any]) -> str:
    """What a schema accepts, in words."""
    if "const" in schema:
        return json.dumps(schema["const"])
    if schema.get("pattern") == DURATION_PATTERN:
        return "a duration such as 90s, 10m or 1h30m"
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    types = schema.get("type", [])
    types = types if isinstance(types, list) else [types]
    if {"string", "integer", "number", "boolean"} <= set(types):
        return "text, a number or true/false"
    names = []
    for name in types:
        item = schema.get("items", {}).get("type") if name == "array" else None
        names.append(f"a list of {_PLURALS.get(item, item)}" if item else _TYPE_NAMES[name])
    return " or ".join(names) or "something else"


def _path(error: ValidationError) -> Path:
    return tuple(error.absolute_path)


def _explain(error: ValidationError, report: Reporter) -> None:
    path, value, schema = _path(error), error.instance, error.schema
    kind = error.validator
    if "propertyNames" in error.absolute_schema_path:
        rule = PATTERN_RULES.get(str(error.validator_value), "is not allowed")
        report.at(path, f"name {json.dumps(value)} {rule}", pos=(*path, value), key=True)
    elif kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        for key in value:
            if key not in known:
                hint = kestra_words.suggest_key(key, known) or did_you_mean(key, known)
                message = UNKNOWN_KEY.format(key=key, hint=hint)
                report.at(path, message, pos=(*path, key), key=True)
    elif kind == "required":
        for key in error.validator_value:
            if key not in value:
                report.at(path, MISSING_KEY.format(key=key))
    elif kind in ("oneOf", "anyOf"):
        _explain_choice(error, report)
    else:
        report.at(path, _sentence(error))


def _sentence(error: ValidationError) -> str:
    value, schema, limit = error.instance, error.schema, error.validator_value
    kind = error.validator
    got = describe(value)
    if kind == "type":
        hint = COLON_HINT if isinstance(value, dict) and "string" in str(schema["type"]) else ""
        if isinstance(value, list) and tuple(error.absolute_path) == ("inputs",):
            hint = kestra_words.inputs_as_mapping(value, _input_types())  # Kestra's "- id:"
        return WRONG_TYPE.format(expected=expected(schema), got=got) + hint
    if kind == "enum":
        allowed = [str(v) for v in limit]
        hint = kestra_words.suggest_value(value, allowed) or did_you_mean(str(value), allowed)
        choices = ", ".join(str(v) for v in limit)
        return NOT_IN_ENUM.format(choices=choices, got=got, hint=hint)
    if kind == "const":
        return NOT_CONST.format(expected=json.dumps(limit), got=got)
    if kind == "maxLength":
        return TOO_LONG.format(got=len(value), limit=limit)
    if kind in ("pattern", "minLength") and schema.get("pattern") in PATTERN_RULES:
        return f"{json.dumps(value)} {PATTERN_RULES[schema['pattern']]}"
    if kind == "pattern":
        return NO_MATCH.format(value=json.dumps(value), pattern=limit)
    if kind in ("minLength", "minItems", "minProperties"):
        return EMPTY
    if kind == "uniqueItems":
        return DUPLICATE_ITEM.format(item=_first_duplicate(value))
    if kind == "maxItems":
        return TOO_MANY.format(count=len(value), noun="items",
                               limit=f"at most {limit} are allowed", advice="")
    if kind == "minimum":
        return TOO_SMALL.format(limit=limit, got=value)
    if kind == "maximum":
        return TOO_LARGE.format(limit=limit, got=value)
    if kind == "exclusiveMinimum":
        return NOT_POSITIVE.format(limit=limit, got=value)
    return str(error.message)


def _input_types() -> list[str]:
    types: list[str] = schema()["$defs"]["input"]["properties"]["type"]["enum"]
    return types


def _first_duplicate(items: list[Any]) -> str:
    seen: set[Any] = set()
    for item in items:
        identity = schema_fast.json_identity(item)  # hashable, JSON equality: one pass
        if identity in seen:
            return describe(item)
        seen.add(identity)
    return "an item"


def _explain_choice(error: ValidationError, report: Reporter) -> None:
    """A failed oneOf/anyOf: explain the branch that was evidently meant."""
    path, value = _path(error), error.instance
    branches: list[dict[str, Any]] = error.validator_value
    if all(set(b) == {"required"} for b in branches):
        if not isinstance(value, dict):
            return  # not a mapping at all: its type error says so
        given = [b["required"][0] for b in branches if b["required"][0] in value]
        if given:
            report.at(path, BOTH_COMMANDS_SCRIPT, pos=(*path, given[-1]), key=True)
        else:
            report.at(path, NEITHER_COMMANDS_SCRIPT)
        return
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    for index in sorted(by_branch):
        subs = by_branch[index]
        if not any(s.validator == "type" and not s.relative_path for s in subs):
            for sub in subs:
                _explain(sub, report)
            return
    accepted = " or ".join(expected(b) for b in branches)
    report.at(path, WRONG_TYPE.format(expected=accepted, got=describe(value)))
