"""runner.loading.yamlload against PyYAML's own composer: the same data, positions and problems.

The oracle below composes the file with PyYAML (its node tree keeps start marks) and
walks it with flowbot's scalar rules; the event builder must agree with it on every
file it loads. Files it refuses must come back as positioned problems, never raise.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, SequenceNode

from runner.loading import yamlscalars
from runner.loading.yamlload import Loaded, Problem, load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus").rglob("*.yml"))
EXAMPLES = sorted((ROOT / "examples" / "repo-template" / "flows").glob("*.yml"))
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TOKENS = [
    "id: ", "tasks:", "\n", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ",
    "! ", "!x ", "? ", "|", ">", "|-", "'", '"', "#", "---\n", "...\n", "\t", "on", "yes", "010",
    "1:30", "~", "1_0", "0x1F", ".inf", "null", "true", "-", "+1", "{{ inputs.x }}", "a", "b",
    "\x00", "\ufeff", "é", "%YAML 1.1\n", "<<: ", "inputs:", "default: ", "script: |", "1.5",
]
yamlish = st.lists(st.sampled_from(_TOKENS) | st.text(max_size=5), max_size=80).map("".join)


class _Oracle:
    """Data, positions and non-fatal problems of a composed tree, by flowbot's rules."""

    def __init__(self) -> None:
        self.loaded = Loaded(data=None)

    def node(self, node: Any, path: tuple[str | int, ...]) -> Any:
        mark = node.start_mark
        self.loaded.values[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, SequenceNode):
            return [self.node(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if node.style in ("|", ">"):
            self.loaded.blocks[path] = node.style
        if node.style:
            return node.value
        value, problem = yamlscalars.resolve(node.value)
        if problem:
            self.loaded.problems.append(Problem(mark.line + 1, mark.column + 1, problem))
        return value

    def mapping(self, node: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key, mark = key_node.value, key_node.start_mark
            if not key_node.style:
                value, problem = yamlscalars.resolve(key, key=True)
                if problem is None and not isinstance(value, str):
                    problem = "non-text key"
                if problem:
                    self.loaded.problems.append(Problem(mark.line + 1, mark.column + 1, problem))
            if key in result:
                self.loaded.problems.append(Problem(mark.line + 1, mark.column + 1, "duplicate"))
                self.node(value_node, (*path, f"{key} (again)"))
                continue
            self.loaded.keys[(*path, key)] = (mark.line + 1, mark.column + 1)
            result[key] = self.node(value_node, (*path, key))
        return result


def _same_as_composed(text: str | bytes) -> Loaded:
    """Load ``text``; where it loads, check it against the oracle."""
    loaded = load(text)
    assert loaded.data is not None or loaded.problems  # never silently empty
    if loaded.data is None:
        return loaded
    oracle = _Oracle()
    source = text.decode("utf-8-sig") if isinstance(text, bytes) else text.lstrip("\ufeff")
    oracle.loaded.data = oracle.node(yaml.compose(source, Loader=_LOADER), ())
    # repr: NaN != NaN, but both must give the same NaN-bearing data
    assert repr(loaded.data) == repr(oracle.loaded.data)
    assert (loaded.values, loaded.keys, loaded.blocks) == (
        oracle.loaded.values, oracle.loaded.keys, oracle.loaded.blocks
    )
    # the oracle words problems loosely: compare where they are, and how many
    assert sorted((p.line, p.col) for p in loaded.problems) == sorted(
        (p.line, p.col) for p in oracle.loaded.problems
    )
    return loaded


@pytest.mark.parametrize("path", CORPUS + EXAMPLES, ids=lambda p: p.name)
def test_corpus_and_examples_load_as_composed(path: Path) -> None:
    _same_as_composed(path.read_bytes())


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors
        "a: !!int 1\n",  # explicit tags
        "a: 1\n---\nb: 2\n",  # several documents
        "- a\n",  # a list at the root
        "[a]: 1\n",  # a complex key
        "a: [" * 70 + "]" * 70 + "\n",  # deeper than the limit
        "a: 'open\n",  # a syntax error
    ],
)
def test_unusual_files_are_refused_with_one_positioned_problem(text: str) -> None:
    loaded = load(text)
    assert loaded.data is None
    [problem] = loaded.problems
    assert problem.line >= 1 and problem.col >= 1


def test_non_fatal_problems_are_positioned_where_the_composer_puts_the_nodes() -> None:
    text = "a: yes\nb: 010\n1: x\nc:\n  d: 1:30\nc: 2\nonly: '|'\ns: |\n  x\n"
    assert len(_same_as_composed(text).problems) == 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_arbitrary_yamlish_text_loads_as_composed(text: str) -> None:
    _same_as_composed(text)


# Scalars of every style, nesting, and text that looks like other types.
_SCALARS = st.sampled_from([
    "", " ", "a", "yes", "no", "on", "off", "y", "true", "True", "FALSE", "null", "Null", "~",
    "0", "-0", "010", "0o17", "0x1F", "1_000", "1:30", "1.5", "1e3", "-1.5e-3", ".5", "+1",
    ".inf", "-.Inf", ".nan", "1.", "a: b", "a #b", "#x", "- x", "[x]", "{x}", "x, y",
    "'q'", '"q"', "back\\slash", "tab\there", "line\nbreak", "trail \n", "  lead",
    "{{ inputs.x }}", "echo \"$X\" && exit 1", "|", ">", "*x", "&x", "!x", "%x", "@x", "`x`",
    "key:", "é", "a\u2028b",
]) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_VALUES = st.recursive(
    _SCALARS | st.integers(-1000, 1000) | st.booleans() | st.none() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(_SCALARS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(_SCALARS, _VALUES, min_size=1, max_size=5),
    st.sampled_from([None, "'", '"', "|", ">"]),
    st.sampled_from([None, False, True]),
    st.sampled_from([20, 80]),
)
def test_dumped_documents_of_every_style_load_as_composed(
    data: dict[str, object], style: str | None, flow: bool | None, width: int
) -> None:
    text = yaml.safe_dump(data, default_style=style, default_flow_style=flow, width=width,
                          sort_keys=False)
    _same_as_composed(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: |\n  one\n  two\n\n\nb: x\n",  # literal, clip
        "a: |-\n  one\n  two\n\nb: x\n",  # strip
        "a: |+\n  one\n\n\nb: x\n",  # keep
        "a: |2\n    indented\n  less\n",  # explicit indentation
        "a: >\n  folded\n  text\n\n  para\n    more\n  back\n",  # folded with a more-indented line
        "a: plain\n  continued\n\n  after blank\n",  # multi-line plain
        "a: 'single ''quoted''\n  folded'\n",
        'a: "esc \\" \\\\ \\n \\t \\x41 \\u00e9 \\\n  joined"\n',
        "a: [x, 'y', \"z\", {k: v}, [1, 2]]\nb: {c: , d: [], e: {}}\n",
        "a:\n- x\n- - y\n  - z\n- k: v\n  l: w\n",
        "a: # comment\n  b # not a comment? it is text\n",
        "? a\n: b\n",  # explicit key syntax
        "a: 1\nb: 0o17\nc: 0x1F\nd: 1e3\ne: .5\nf: -1\ng: +2\nh: .inf\ni: 1.\n",
        "a: \nb: ~\nc: null\nd:\n",
        "'1': x\n\"true\": y\n",  # quoted keys that look like other types
        "a: b\n...\n",  # a document end marker
        "%YAML 1.2\n---\na: b\n",
    ],
)
def test_tricky_but_valid_documents_load_as_composed(text: str) -> None:
    _same_as_composed(text)


def test_mutated_examples_load_as_composed_or_as_problems() -> None:
    """Flow files with random edits: whatever loads matches the composer."""
    rng = random.Random(5)
    flows = [path.read_text() for path in EXAMPLES]
    pieces = ["'", '"', "\\", "#", " #", "{", "}", "[", "]", ",", "- ", ": ", "\n", "  ", "|-",
              ">+", "*", "&", "!", "?", "%", "@", "inf", "-.nan", "0x10", "1:30", "yes", "~"]
    loaded = 0
    for _ in range(1500):
        text = rng.choice(flows)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.5:
                text = text[:at] + rng.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rng.randint(1, 5):]
        loaded += _same_as_composed(text).data is not None
    assert loaded > 300  # the edits left many files loadable
