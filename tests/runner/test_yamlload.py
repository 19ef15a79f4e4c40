"""runner.loading.yamlload: positions, YAML 1.2 scalars, and hostile input as problems."""

from __future__ import annotations

import pytest

from runner.loading import yamlload
from runner.loading.yamlload import load

FLOW = """\
id: etl
tasks:
  - id: extract
    image: busybox:latest
    commands:
      - echo one
      - "echo two"
"""


def test_keeps_line_and_column_of_every_key_value_and_item() -> None:
    loaded = load(FLOW)
    assert loaded.problems == []
    assert loaded.values[("id",)] == (1, 5)
    assert loaded.keys[("tasks",)] == (2, 1)
    assert loaded.values[("tasks", 0)] == (3, 5)
    assert loaded.keys[("tasks", 0, "image")] == (4, 5)
    assert loaded.values[("tasks", 0, "image")] == (4, 12)
    assert loaded.values[("tasks", 0, "commands", 1)] == (7, 9)


def test_value_pos_falls_back_to_nearest_known_ancestor() -> None:
    loaded = load(FLOW)
    assert loaded.value_pos(("tasks", 0, "nope", 3)) == (3, 5)
    assert loaded.key_pos(("tasks", 0, "commands", 0)) == (6, 9)


def test_bytes_and_text_give_the_same_data_and_a_bom_is_ignored() -> None:
    assert load(FLOW.encode()).data == load("\ufeff" + FLOW).data == load(FLOW).data


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("12", 12),
        ("-3", -3),
        ("0", 0),
        ("0x1F", 31),
        ("0o17", 15),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("2026-01-01", "2026-01-01"),
        ("'yes'", "yes"),
        ('"010"', "010"),
        ("hello world", "hello world"),
    ],
)
def test_scalars_follow_yaml_1_2_core(text: str, value: object) -> None:
    loaded = load(f"key: {text}\n")
    assert loaded.problems == []
    assert loaded.data == {"key": value}


@pytest.mark.parametrize("text", ["yes", "No", "ON", "off", "y", "N", "010", "1:30", "1_000"])
def test_yaml_1_1_only_forms_are_reported_with_quote_advice(text: str) -> None:
    loaded = load(f"key: {text}\n")
    [problem] = loaded.problems
    assert (problem.line, problem.col) == (1, 6)
    assert f'"{text}"' in problem.message and "YAML 1.1" in problem.message


def test_yaml_1_1_boolean_key_is_reported_at_the_key() -> None:
    [problem] = load("id: x\non:\n  push: 1\n").problems
    assert (problem.line, problem.col) == (2, 1)
    assert problem.message.endswith('quote it: "on":')


def test_duplicate_keys_name_both_lines() -> None:
    [problem] = load("a: 1\nb: 2\na: 3\n").problems
    assert (problem.line, problem.col) == (3, 1)
    assert 'duplicate key "a" (first defined on line 1)' in problem.message


def test_oversize_file_is_refused_before_parsing() -> None:
    data = b"id: x\n" + b"#" * yamlload.MAX_BYTES
    loaded = load(data)
    assert loaded.data is None
    [problem] = loaded.problems
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message == (
        f"file is {len(data)} bytes; flow files may be at most {yamlload.MAX_BYTES} bytes"
    )


def test_deep_nesting_stops_at_the_limit() -> None:
    loaded = load("a: " + "[" * 70 + "]" * 70)
    [problem] = loaded.problems
    assert (problem.line, problem.col) == (1, 3 + yamlload.MAX_DEPTH)
    assert problem.message == "nesting deeper than 64 levels; flow files are never this deep"


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_very_deep_nesting_is_a_problem_not_a_crash(opener: str) -> None:
    loaded = load("a:\n  " + opener * 100_000 + "x\n")
    assert loaded.data is None
    [problem] = loaded.problems
    assert problem.message == "nesting deeper than 64 levels; flow files are never this deep"


def test_alias_bomb_is_refused_at_the_first_anchor() -> None:
    text = "a: &a [x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
        for i in range(20)
    )
    loaded = load(text)
    assert loaded.data is None
    assert [(p.line, p.col) for p in loaded.problems] == [(1, 4)]


def test_alias_without_anchor_is_refused() -> None:
    [problem] = load("a: *nothing\n").problems
    assert "aliases" in problem.message or "invalid YAML" in problem.message


def test_non_utf8_reports_line_column_and_byte_offset() -> None:
    [problem] = load(b"id: x\nname: \xff\xfe\n").problems
    assert (problem.line, problem.col) == (2, 7)
    assert "byte 0xff at offset 12" in problem.message


def test_tab_inside_a_block_scalar_is_content_not_indentation() -> None:
    loaded = load("script: |\n  make\n  \tindented with a tab\n")
    assert loaded.problems == []
    assert loaded.data == {"script": "make\n\tindented with a tab\n"}
    assert loaded.blocks == {("script",): "|"}
