"""Parsing $FLOWBOT_OUTPUT: key=value lines and GitHub's multi-line form."""

import tracemalloc
from pathlib import Path

from runner.running.outputs import parse_outputs, read_outputs


def test_key_value_lines_and_last_one_wins() -> None:
    text = "count=3\nurl=https://x/?a=b\n\nnot an output\ncount=4\nempty=\n"
    assert parse_outputs(text) == {"count": "4", "url": "https://x/?a=b", "empty": ""}


def test_multi_line_values_with_a_delimiter() -> None:
    text = "report<<EOF\nline 1\nx=y\nEOF\nafter=1\n"
    assert parse_outputs(text) == {"report": "line 1\nx=y", "after": "1"}


def test_an_unterminated_block_takes_the_rest() -> None:
    assert parse_outputs("a<<END\none\ntwo") == {"a": "one\ntwo"}


def test_invalid_keys_are_ignored() -> None:
    assert parse_outputs("9bad=1\n=x\nok_key.v-1=2") == {"ok_key.v-1": "2"}


def test_a_huge_output_file_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "out"
    with path.open("wb") as f:
        f.write(b"count=42\nlast=" + b"x" * 100)
        f.truncate(300 * 1024 * 1024)  # sparse: no disk used
    tracemalloc.start()
    try:
        values, cut = read_outputs(path, limit=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert values == {"count": "42"}  # the line the limit cut in two is dropped whole
    assert cut is True
    assert peak < 1024 * 1024


def test_outputs_under_the_limit_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("a=1\nb<<END\nx\nEND\n")
    assert read_outputs(path, limit=1024) == ({"a": "1", "b": "x"}, False)
    assert read_outputs(tmp_path / "missing") == ({}, False)
