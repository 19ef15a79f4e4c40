"""Parsing $FLOWBOT_OUTPUT: key=value lines and GitHub's multi-line form."""

from runner.outputs import parse_outputs


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
