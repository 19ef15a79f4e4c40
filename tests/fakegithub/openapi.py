"""Check requests against the vendored subset of GitHub's OpenAPI description.

The description is OpenAPI 3.0.3, so schemas are validated with
``openapi_schema_validator.OAS30WriteValidator`` (``nullable``, ``readOnly``).
``$ref``s into ``#/components`` resolve because each checked schema is wrapped
in a root document that carries the spec's ``components``.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    oas30_format_checker,
)

SUBSET = Path(__file__).resolve().parent / "github-openapi-subset.json.gz"
_SHARED: Checker | None = None


@dataclass(frozen=True)
class Operation:
    """One (method, path template) of the description, with its parameters resolved."""

    method: str
    template: str
    regex: re.Pattern[str]
    parameters: tuple[dict[str, Any], ...]
    body_schema: dict[str, Any] | None
    body_required: bool
    responses: dict[str, Any]


@dataclass(frozen=True)
class Match:
    operation: Operation
    path_params: dict[str, Any]


class RequestRejected(Exception):
    """The request does not conform to the description; ``status`` is GitHub's answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")


class Checker:
    """Matches a request to an operation and validates its parameters and body."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._components = spec.get("components", {})
        self._skeletons: dict[str, Any] = {}
        self._spec = spec
        ops = [self._operation(m, t, item) for t, item in spec["paths"].items()
               for m in item if m != "parameters"]
        # Literal segments beat parameters: /issues/comments/{id} before /issues/{n}.
        self._operations = sorted(ops, key=lambda op: -len(re.sub(r"\{[^}]+\}", "", op.template)))

    @classmethod
    def shared(cls) -> Checker:
        """The checker of the vendored subset, parsed once per test session."""
        global _SHARED
        if _SHARED is None:
            _SHARED = cls.load()
        return _SHARED

    @classmethod
    def load(cls, path: Path = SUBSET) -> Checker:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return cls(json.load(handle))

    def check(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Match:
        """The matching operation, or :class:`RequestRejected` (404 unknown, 422 invalid)."""
        match = self._match(method.lower(), path)
        op = match.operation
        for param in op.parameters:
            self._check_param(param, match.path_params, query)
        known = {p["name"] for p in op.parameters if p["in"] == "query"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise RequestRejected(422, f"unknown query parameter(s) {', '.join(unknown)}")
        self._check_body(op, body)
        return match

    def check_response(self, op: Operation, status: int, payload: Any) -> str | None:
        """Why a 2xx answer of the fake does not match GitHub's schema, or None."""
        response = op.responses.get(str(status))
        if not 200 <= status < 300 or response is None:
            return None  # errors and undocumented codes are not checked
        content = self._deref(response).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return None  # no JSON body described
        try:
            self._validate(schema, payload, f"response {status}", OAS30ReadValidator)
        except RequestRejected as exc:
            return exc.message
        return None

    def skeleton(self, schema_name: str) -> dict[str, Any]:
        """A minimal valid instance of ``#/components/schemas/<schema_name>``:
        every required field, with a placeholder of its type (real values go on top)."""
        if schema_name not in self._skeletons:
            self._skeletons[schema_name] = _placeholder(
                self._components, {"$ref": f"#/components/schemas/{schema_name}"}, 0)
        return copy.deepcopy(self._skeletons[schema_name])

    # -- matching ---------------------------------------------------------

    def _match(self, method: str, path: str) -> Match:
        for op in self._operations:
            found = op.regex.fullmatch(path)
            if found and op.method == method:
                return Match(op, dict(found.groupdict()))
        raise RequestRejected(404, f"no operation {method.upper()} {path} in GitHub's REST API")

    def _operation(self, method: str, template: str, item: dict[str, Any]) -> Operation:
        op = item[method]
        params = [self._deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]
        multi = {p["name"] for p in params if p.get("x-multi-segment")}

        def group(found: re.Match[str]) -> str:
            name = found.group(1)
            return f"(?P<{name}>{'.+' if name in multi else '[^/]+'})"

        regex = re.compile(re.sub(r"\{(\w+)\}", group, template))
        body = op.get("requestBody")
        body = self._deref(body) if body else None
        schema = body["content"].get("application/json", {}).get("schema") if body else None
        return Operation(method, template, regex, tuple(params), schema,
                         bool(body and body.get("required")), op.get("responses", {}))

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            kind, name = node["$ref"].split("/")[-2:]
            node = self._components[kind][name]
        return node

    # -- validation -------------------------------------------------------

    def _check_param(self, param: dict[str, Any], path_params: dict[str, Any],
                     query: dict[str, list[str]]) -> None:
        name, where = param["name"], param["in"]
        schema = param.get("schema", {})
        if where == "path":
            raw: list[str] | None = [path_params[name]]
        elif where == "query":
            raw = query.get(name)
        else:
            return  # headers and cookies are not checked
        if raw is None:
            if param.get("required"):
                raise RequestRejected(422, f"missing {where} parameter {name}")
            return  # optional and absent
        value = _coerce(raw, self._deref(schema) if "$ref" in schema else schema)
        self._validate(schema, value, f"{where} parameter {name}")

    def _check_body(self, op: Operation, body: Any) -> None:
        if op.body_schema is None:
            if body is not None:
                raise RequestRejected(422, f"{op.method.upper()} {op.template} takes no body")
            return  # nothing to check
        if body is None:
            if op.body_required:
                raise RequestRejected(422, "a JSON request body is required")
            return  # optional body absent
        self._validate(op.body_schema, body, "request body")

    def _validate(self, schema: dict[str, Any], value: Any, what: str,
                  kind: Any = OAS30WriteValidator) -> None:
        root = {**schema, "components": self._components}
        validator = kind(root, format_checker=oas30_format_checker)
        error = best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            raise RequestRejected(422, f"{what}{' at ' + where if where else ''}: {error.message}")


def _coerce(raw: list[str], schema: dict[str, Any]) -> Any:
    """Turn query/path strings into the JSON type the schema expects."""
    kind = schema.get("type")
    if kind == "array":
        items = [part for value in raw for part in value.split(",")]
        return [_scalar(item, schema.get("items", {}).get("type")) for item in items]
    return _scalar(raw[-1], kind)


def _scalar(text: str, kind: Any) -> Any:
    if kind == "integer":
        return int(text) if re.fullmatch(r"-?\d+", text) else text
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def _placeholder(components: dict[str, Any], schema: dict[str, Any], depth: int) -> Any:
    """The simplest value ``schema`` accepts (required fields only; None if nullable)."""
    while "$ref" in schema:
        kind, name = schema["$ref"].split("/")[-2:]
        schema = components[kind][name]
    if schema.get("nullable") and depth > 0:
        return None
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _placeholder(components, schema[key][0], depth)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_placeholder(components, part, depth) or {})
        return merged
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _placeholder(components, props.get(name, {}), depth + 1)
                for name in schema.get("required", [])}
    if kind == "string":
        return {"date-time": "2024-01-01T00:00:00Z", "uri": "https://example.invalid/",
                "email": "nobody@example.invalid"}.get(schema.get("format", ""), "")
    return {"integer": 0, "number": 0, "boolean": False, "array": []}.get(kind)
