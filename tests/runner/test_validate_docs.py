"""docs/flows.md documents every field of the schema, and its example is valid."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.validation.schema_messages import schema
from runner.validation.validate import validate_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"


def _properties(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties":
                yield from value
            yield from _properties(value)
    elif isinstance(node, list):
        for item in node:
            yield from _properties(item)


def test_every_schema_property_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = sorted(set(_properties(schema())))
    assert len(names) >= 40  # guards against walking the schema wrongly
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []


def test_every_enum_value_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = []
    for node in _nodes(schema()):
        for value in node.get("enum", []):
            if f"`{value}`" not in text:
                missing.append(value)
    assert missing == []


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)


def test_the_complete_example_is_a_valid_flow() -> None:
    text = DOC.read_text(encoding="utf-8")
    example = text.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    report = validate_text("docs/flows.md", example, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert [str(d) for d in report.diagnostics] == []


def test_the_validator_reads_the_one_schema_in_schemas() -> None:
    """runner/validation/flow.schema.json links into schemas/ (a wheel gets a copy)."""
    from runner.validation.schema_messages import SCHEMA_PATH

    root = Path(__file__).resolve().parents[2]
    assert SCHEMA_PATH.is_symlink()
    assert SCHEMA_PATH.resolve() == root / "schemas" / "flow.schema.json"


def test_every_size_limit_of_the_schema_is_in_the_limits_table() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Limits", 1)[1].split("\n## ", 1)[0]
    limits = {
        (name, node["maxItems"]) for name, node in schema()["properties"].items()
        if "maxItems" in node
    }
    assert {name for name, _ in limits} == {"tasks", "errors", "triggers"}
    for name, limit in limits:
        assert f"(`{name}`) | {limit} |" in text, name


def test_every_length_limit_of_the_schema_is_in_the_limits_table() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Limits", 1)[1].split("\n## ", 1)[0]
    limits = sorted({node["maxLength"] for node in _nodes(schema()) if "maxLength" in node})
    assert limits == [16, 32, 64, 200, 512, 1000]
    for limit in limits:
        assert f"| {limit} | schema (`maxLength`) |" in text, limit
