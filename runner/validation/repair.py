"""A schema-valid stand-in for a flow that fails the schema, so that every problem
of a file is found in one pass.

The checks a schema can't express (crons, timezones, ids, ``needs``, templates,
inputs, DST warnings) assume the shape the schema guarantees. :func:`repair`
keeps every well-formed part as written and puts a minimal valid stand-in where
a part is malformed (or leaves an optional part out); ``Repaired.quiet`` then
drops the findings about those stand-ins, which the schema's messages already
cover. A task whose ``image`` is missing keeps its id, needs and templates, so a
bad cron elsewhere — or in it — is reported in the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.loading.yamlload import Path
from runner.validation import schema_fast

# Ids of stand-in tasks: valid ids, listed in no message and suggested nowhere.
STUB_PREFIX = "flowbot-stub-"
# Required keys whose stand-in changes what the rest of the part means: the
# whole part is then left to the schema's messages (an input of unknown type).
_DEFINING = frozenset({"type"})
_STAND_INS: dict[str, Any] = {"image": "busybox", "cron": "0 0 * * *"}
_DROP = object()
_OBJECT_KEYS = frozenset({"properties", "additionalProperties", "propertyNames"})


@dataclass
class Repaired:
    """A schema-valid copy of a flow and the paths that were stood in for."""

    data: dict[str, Any]
    bad: set[Path] = field(default_factory=set)

    def quiet(self, path: Path, message: str) -> bool:
        """True for a finding about a stand-in: at or under a malformed part."""
        if STUB_PREFIX in message:
            return True
        if len(path) > 3 and path[0] == "triggers" and path[2] == "inputs":
            # a value given for an input whose declaration is malformed: its type is unknown
            if ("inputs",) in self.bad or ("inputs", path[3]) in self.bad:
                return True
        return any(path[:n] in self.bad for n in range(len(path) + 1))


def repair(data: Any, root: dict[str, Any], valid: Callable[[Any], bool]) -> Repaired | None:
    """``data`` made schema-valid part by part, or None when it cannot be (the
    semantic checks are then skipped, as for a file that is not a mapping)."""
    if not isinstance(data, dict):
        return None
    fixer = _Fixer(root)
    fixed = fixer.fix(data, root, ())
    if not isinstance(fixed, dict) or not valid(fixed):
        return None
    return Repaired(fixed, fixer.bad)


class _Fixer:
    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._checks: dict[int, schema_fast.Check] = {}
        self._stubs = 0
        self.bad: set[Path] = set()

    def _resolve(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self._root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def _ok(self, schema: Any, value: Any) -> bool:
        check = self._checks.get(id(schema))
        if check is None:
            check = self._checks[id(schema)] = schema_fast.compile_schema(self._root, schema)
        return check(value)

    def fix(self, value: Any, schema: Any, path: Path) -> Any:
        """``value`` if valid, else its repaired copy, else ``_DROP`` (path marked bad)."""
        schema = self._resolve(schema)
        if self._ok(schema, value):
            return value
        if isinstance(value, dict) and isinstance(schema, dict) and _OBJECT_KEYS & set(schema):
            fixed: Any = self._fix_object(value, schema, path)
        elif isinstance(value, list) and isinstance(schema, dict) and "items" in schema:
            too_many = len(value) > schema.get("maxItems", len(value))
            fixed = _DROP if too_many else self._fix_list(value, schema, path)
        else:
            fixed = _DROP
        if fixed is not _DROP and self._ok(schema, fixed):
            return fixed
        self.bad.add(path)
        return _DROP

    def _fix_object(self, value: dict[str, Any], schema: dict[str, Any], path: Path) -> Any:
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = (*path, key)
            known = key in props
            if not known and (extra is False or (names and not self._ok(names, key))):
                self.bad.add(where)  # an unknown or misnamed key: left out
                continue
            fixed = self.fix(item, props[key] if known else extra, where)
            if fixed is _DROP and not known and isinstance(self._resolve(extra), dict):
                fixed = self.stand_in(self._resolve(extra))  # keep the name: templates use it
            if fixed is not _DROP:
                out[key] = fixed
        for key in schema.get("required", []):
            if key not in out:
                out[key] = self.stand_in(props[key], key)
                self.bad.add(path if key in _DEFINING else (*path, key))
        self._one_of(out, schema, path)
        return out

    def _one_of(self, out: dict[str, Any], schema: dict[str, Any], path: Path | None) -> None:
        """``oneOf`` branches that only require a key (commands or script): keep one."""
        branches = schema.get("oneOf") or []
        if not branches or not all(set(b) == {"required"} for b in branches):
            return
        keys = [b["required"][0] for b in branches]
        given = [k for k in keys if k in out]
        for extra in given[1:]:
            del out[extra]  # reported by the schema; the first one is still checked
        if not given:
            out[keys[0]] = self.stand_in(schema["properties"][keys[0]])
            if path is not None:  # a stand-in inside a stand-in is covered already
                self.bad.add((*path, keys[0]))

    def _fix_list(self, value: list[Any], schema: dict[str, Any], path: Path) -> Any:
        items = []
        for index, item in enumerate(value):
            fixed = self.fix(item, schema["items"], (*path, index))
            # Items keep their index so that later ones are reported where they are.
            items.append(self.stand_in(schema["items"]) if fixed is _DROP else fixed)
        minimum = schema.get("minItems", 0)
        if len(items) < minimum:
            self.bad.add(path)
            items.extend(self.stand_in(schema["items"]) for _ in range(minimum - len(items)))
        return items

    def stand_in(self, schema: Any, key: str = "") -> Any:
        """The smallest value ``schema`` accepts (a new stub id for each task id)."""
        schema = self._resolve(schema)
        if key == "id":
            self._stubs += 1
            return f"{STUB_PREFIX}{self._stubs}"
        if key in _STAND_INS:
            return _STAND_INS[key]
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        kind = kind[0] if isinstance(kind, list) else kind
        if kind == "object":
            out = {k: self.stand_in(schema["properties"][k], k) for k in schema.get("required", [])}
            self._one_of(out, schema, None)
            return out
        if kind == "array":
            return [self.stand_in(schema["items"]) for _ in range(schema.get("minItems", 0))]
        return {"string": "x", "integer": schema.get("minimum", 1), "number": 1,
                "boolean": False}.get(str(kind))
