"""A fast yes/no check of data against the flow schema.

jsonschema explains errors well but costs ~10 ms per flow file; most files are
valid. This module compiles the keywords the flow schema uses into plain
closures (~100x faster) that only answer "valid?". When the answer is no,
:mod:`runner.validation.schema_messages` runs jsonschema to explain why. A keyword this
module does not know makes compilation fail, so a schema change can never be
silently half-checked; tests compare both validators on generated flows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that do not constrain instances.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "title", "description", "default", "examples", "$comment"}
)


_OBJECT_KEYWORDS = frozenset({"properties", "additionalProperties", "required", "propertyNames"})
_ARRAY_KEYWORDS = frozenset({"items", "minItems", "maxItems", "uniqueItems"})


class UnsupportedSchema(ValueError):
    """The schema uses a keyword the fast checker does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


def json_identity(value: Any) -> Any:
    """JSON equality: true is not 1, 1 is 1.0 (text, the common case, skips json.dumps)."""
    if type(value) is str:
        return value
    if isinstance(value, bool) or not _is_number(value):
        return ("json", json.dumps(value, sort_keys=True))
    if isinstance(value, float) and value.is_integer():
        return ("number", str(int(value)))
    return ("number", repr(value))


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.compiling: set[str] = set()

    def compile(self, node: Any) -> Check:
        if node is True or node == {}:
            return lambda v: True
        if node is False:
            return lambda v: False
        checks = []
        fused, used = self._fused(node)
        if fused is not None:
            checks.append(fused)
        for key, value in node.items():
            if key in _ANNOTATIONS or key in used:
                continue
            build: Callable[[Any, dict[str, Any]], Check] | None = getattr(
                self, "_kw_" + key.lstrip("$"), None
            )
            if build is None:
                raise UnsupportedSchema(f"keyword {key!r} is not supported by the fast checker")
            checks.append(build(value, node))
        if len(checks) == 1:
            return checks[0]

        def all_of(v: Any) -> bool:
            for check in checks:
                if not check(v):
                    return False
            return True

        return all_of

    def _fused(self, node: dict[str, Any]) -> tuple[Check | None, frozenset[str]]:
        """One closure for ``type: object``/``type: array`` and the keywords that only
        apply to that type: one call per value instead of one per keyword."""
        kind = node.get("type")
        if kind == "object":
            used = _OBJECT_KEYWORDS.intersection(node)
            return self._object(node), used | {"type"}
        if kind == "array":
            used = _ARRAY_KEYWORDS.intersection(node)
            return self._array(node), used | {"type"}
        return None, frozenset()

    def _object(self, node: dict[str, Any]) -> Check:
        props = {name: self.compile(sub) for name, sub in node.get("properties", {}).items()}
        required = tuple(node.get("required", ()))
        extra = node.get("additionalProperties", True)
        closed = extra is False
        extra_check = None if closed or extra is True or extra == {} else self.compile(extra)
        names = self.compile(node["propertyNames"]) if "propertyNames" in node else None

        def check_object(v: Any) -> bool:
            if not isinstance(v, dict):
                return False
            for name in required:
                if name not in v:
                    return False
            for key, item in v.items():
                if names is not None and not names(key):
                    return False
                sub = props.get(key)
                if sub is not None:
                    if not sub(item):
                        return False
                elif closed or (extra_check is not None and not extra_check(item)):
                    return False
            return True

        return check_object

    def _array(self, node: dict[str, Any]) -> Check:
        each = self.compile(node["items"]) if "items" in node else None
        least = node.get("minItems", 0)
        most = node.get("maxItems")
        unique = node.get("uniqueItems", False)

        def check_array(v: Any) -> bool:
            if not isinstance(v, list) or len(v) < least:
                return False
            if most is not None and len(v) > most:
                return False
            if each is not None:
                for item in v:
                    if not each(item):
                        return False
            return not unique or len({json_identity(i) for i in v}) == len(v)

        return check_array

    def _kw_ref(self, ref: str, node: dict[str, Any]) -> Check:
        if not ref.startswith("#/"):
            raise UnsupportedSchema(f"only local $ref are supported, not {ref!r}")
        if ref not in self.refs:
            self.compiling.add(ref)
            self.refs[ref] = lambda v: True  # placeholder while compiling recursive refs
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            self.refs[ref] = self.compile(target)
            self.compiling.discard(ref)
        if ref not in self.compiling:
            return self.refs[ref]  # compiled: call it directly
        refs = self.refs
        return lambda v: refs[ref](v)  # a recursive reference: look it up when called

    def _kw_type(self, names: str | list[str], node: dict[str, Any]) -> Check:
        preds = [_TYPES[n] for n in ([names] if isinstance(names, str) else names)]
        if len(preds) == 1:
            return preds[0]
        return lambda v: any(p(v) for p in preds)

    def _kw_properties(self, props: dict[str, Any], node: dict[str, Any]) -> Check:
        compiled = [(name, self.compile(sub)) for name, sub in props.items()]

        def properties(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for name, check in compiled:
                if name in v and not check(v[name]):
                    return False
            return True

        return properties

    def _kw_additionalProperties(self, extra: Any, node: dict[str, Any]) -> Check:
        known = frozenset(node.get("properties", {}))
        if extra is False:
            return lambda v: not isinstance(v, dict) or known.issuperset(v)
        check = self.compile(extra)
        return lambda v: not isinstance(v, dict) or all(
            check(item) for key, item in v.items() if key not in known
        )

    def _kw_required(self, names: list[str], node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)

    def _kw_propertyNames(self, sub: Any, node: dict[str, Any]) -> Check:
        check = self.compile(sub)
        return lambda v: not isinstance(v, dict) or all(check(k) for k in v)

    def _kw_items(self, sub: Any, node: dict[str, Any]) -> Check:
        check = self.compile(sub)

        def items(v: Any) -> bool:
            if not isinstance(v, list):
                return True
            for item in v:
                if not check(item):
                    return False
            return True

        return items

    def _kw_minItems(self, n: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, list) or len(v) >= n

    def _kw_maxItems(self, n: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, list) or len(v) <= n

    def _kw_uniqueItems(self, on: bool, node: dict[str, Any]) -> Check:
        if not on:
            return lambda v: True
        return lambda v: not isinstance(v, list) or len({json_identity(i) for i in v}) == len(v)

    def _kw_maxLength(self, n: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, str) or len(v) <= n

    def _kw_minLength(self, n: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, str) or len(v) >= n

    def _kw_pattern(self, pattern: str, node: dict[str, Any]) -> Check:
        search = re.compile(pattern).search
        return lambda v: not isinstance(v, str) or search(v) is not None

    def _kw_enum(self, values: list[Any], node: dict[str, Any]) -> Check:
        allowed = frozenset(json_identity(x) for x in values)
        return lambda v: json_identity(v) in allowed

    def _kw_const(self, value: Any, node: dict[str, Any]) -> Check:
        wanted = json_identity(value)
        return lambda v: json_identity(v) == wanted

    def _kw_minimum(self, limit: float, node: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v >= limit

    def _kw_maximum(self, limit: float, node: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v <= limit

    def _kw_exclusiveMinimum(self, limit: float, node: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v > limit

    def _kw_oneOf(self, subs: list[Any], node: dict[str, Any]) -> Check:
        checks = [self.compile(s) for s in subs]
        return lambda v: sum(1 for c in checks if c(v)) == 1

    def _kw_anyOf(self, subs: list[Any], node: dict[str, Any]) -> Check:
        checks = [self.compile(s) for s in subs]
        return lambda v: any(c(v) for c in checks)

    def _kw_allOf(self, subs: list[Any], node: dict[str, Any]) -> Check:
        checks = [self.compile(s) for s in subs]
        return lambda v: all(c(v) for c in checks)


def compile_schema(schema: dict[str, Any], part: Any = None) -> Check:
    """A function telling whether data is valid against ``schema``, or against its
    sub-schema ``part`` (references still resolved in ``schema``)."""
    return _Compiler(schema).compile(schema if part is None else part)
