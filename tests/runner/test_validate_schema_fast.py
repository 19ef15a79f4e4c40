"""runner.validation.schema_fast must agree with jsonschema on every input (it gates it)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.loading.yamlload import load
from runner.validation.schema_fast import UnsupportedSchema, compile_schema
from runner.validation.schema_messages import fast_check, validator

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
BASE = load((CORPUS / "valid" / "every-field.yml").read_text()).data

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False),
    st.sampled_from(["", "a", "echo", "busybox", "10m", "0s", "schedule", "queue", "none",
                     "bridge", "always", "UPPER", "/abs", "512m", "x y", "string", "int",
                     "choice", "eu", "extract", "id", "-bad", "1.5", "@daily"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "image", "commands", "limit", "type", "x"]),
                      inner, max_size=3),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, item in data.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(BASE)


def _mutate(path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    data = copy.deepcopy(BASE)
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PATHS), values, st.booleans())
def test_agrees_with_jsonschema_on_mutated_flows(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    data = _mutate(path, value, delete)
    assert fast_check()(data) == validator().is_valid(data)


@settings(max_examples=200, deadline=None)
@given(values)
def test_agrees_with_jsonschema_on_arbitrary_values(data: Any) -> None:
    assert fast_check()(data) == validator().is_valid(data)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*/*.yml")), ids=lambda p: p.name)
def test_agrees_with_jsonschema_on_the_corpus(path: Path) -> None:
    data = load(path.read_bytes()).data
    if data is not None:
        assert fast_check()(data) == validator().is_valid(data)


def test_unknown_keyword_fails_compilation() -> None:
    with pytest.raises(UnsupportedSchema):
        compile_schema({"type": "object", "dependentRequired": {"a": ["b"]}})


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    check = compile_schema({"enum": [1, "a"]})
    assert check(1) and check(1.0) and check("a")
    assert not check(True)
