"""runner.yamlfast: the composer fast path gives exactly what the event builder gives."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import yamlfast, yamlryml
from runner.yamlload import MAX_DEPTH, Loaded, load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus").rglob("*.yml"))
EXAMPLES = sorted((ROOT / "examples" / "repo-template" / "flows").glob("*.yml"))
sys.path.insert(0, str(ROOT / "bench"))
from validate import flow_text  # noqa: E402  -- the benchmark's generated flows

_TOKENS = [
    "id: ", "tasks:", "\n", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ",
    "! ", "!x ", "? ", "|", ">", "|-", "'", '"', "#", "---\n", "...\n", "\t", "on", "yes", "010",
    "1:30", "~", "1_0", "0x1F", ".inf", "null", "true", "-", "+1", "{{ inputs.x }}", "a", "b",
    "\x00", "\ufeff", "é", "%YAML 1.1\n", "<<: ", "inputs:", "default: ", "script: |", "1.5",
]
yamlish = st.lists(st.sampled_from(_TOKENS) | st.text(max_size=5), max_size=80).map("".join)


def _same(text: str | bytes) -> None:
    fast, slow = load(text), load(text, fast=False)
    if isinstance(slow.data, dict):  # positions found by one descent, before any full walk
        paths = [*slow.values, ("nope",), ("tasks", 99, "id"), *[(*p, "x") for p in slow.values]]
        for path in paths:
            assert fast.value_pos(path) == slow.value_pos(path), path
            assert fast.key_pos(path) == slow.key_pos(path), path
            assert fast.block_style(path) == slow.block_style(path), path
        again = any(str(part).endswith(" (again)") for path in paths for part in path)
        assert again or fast._maps is None or fast.tree is None  # no map of every node
    assert _fields(fast) == _fields(slow)


def _fields(loaded: Loaded) -> tuple[object, ...]:
    # repr: NaN != NaN, but both paths must give the same NaN-bearing data
    return (repr(loaded.data), loaded.problems, loaded.values, loaded.keys, loaded.blocks,
            loaded.lines)


@pytest.mark.parametrize("path", CORPUS + EXAMPLES, ids=lambda p: p.name)
def test_corpus_and_examples_load_the_same_on_both_paths(path: Path) -> None:
    _same(path.read_bytes())


def test_generated_flows_load_the_same_on_both_paths_and_take_the_fast_one() -> None:
    rng = random.Random(7)
    for n in range(50):
        text = flow_text(n, rng)
        assert yamlfast.build(text, MAX_DEPTH) is not None
        assert yamlryml.load(text, MAX_DEPTH) is not None  # the quickest tier takes them
        _numbered_in_document_order(text)
        _same(text)


def test_without_rapidyaml_the_composer_reads_ordinary_files_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the rapidyaml wheel is missing, the libyaml composer tier takes over."""
    monkeypatch.setattr(yamlryml, "AVAILABLE", False)
    rng = random.Random(9)
    for n in range(30):
        text = flow_text(n, rng)
        result = yamlfast.build(text, MAX_DEPTH)
        assert result is not None and result._root is not None  # composed, not rapidyaml
        _same(text)
    for path in CORPUS + EXAMPLES:
        _same(path.read_bytes())


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors: the builder names them
        "a: !!int 1\n",  # explicit tags
        "a: 1\n---\nb: 2\n",  # several documents
        "- a\n",  # a list at the root
        "[a]: 1\n",  # a complex key
        "a: [" * 70 + "]" * 70 + "\n",  # deeper than the limit
        "a: 'open\n",  # a syntax error
    ],
)
def test_unusual_files_are_left_to_the_event_builder(text: str) -> None:
    assert yamlfast.build(text, MAX_DEPTH) is None
    _same(text)


def test_non_fatal_problems_come_from_the_fast_path_with_their_positions() -> None:
    text = "a: yes\nb: 010\n1: x\nc:\n  d: 1:30\nc: 2\nonly: '|'\ns: |\n  x\n"
    assert yamlfast.build(text, MAX_DEPTH) is not None
    _same(text)
    assert len(load(text).problems) == 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_arbitrary_yamlish_text_loads_the_same_on_both_paths(text: str) -> None:
    _same(text)


def test_the_cycle_collector_is_paused_only_while_loading_and_stays_off_if_it_was() -> None:
    import gc

    from runner.validate import validate_text

    assert gc.isenabled()
    with yamlfast.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    validate_text("f.yml", "id: a\ntasks: []\n")
    assert gc.isenabled()
    gc.disable()
    try:
        with yamlfast.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


# The quickest tier (rapidyaml's data, libyaml's verdict) must agree with the event
# builder on everything it accepts: scalars of every style, nesting, and text that
# looks like other types.
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
def test_dumped_documents_of_every_style_load_the_same_on_every_path(
    data: dict[str, object], style: str | None, flow: bool | None, width: int
) -> None:
    import yaml

    text = yaml.safe_dump(data, default_style=style, default_flow_style=flow, width=width,
                          sort_keys=False)
    _same(text)
    if yamlryml.load(text, MAX_DEPTH) is not None:
        _numbered_in_document_order(text)


def _numbered_in_document_order(text: str) -> None:
    """The quickest tier counts node ids instead of asking for children and siblings:
    rapidyaml must number a fresh tree's nodes in document order."""
    import ryml

    tree = ryml.parse_in_arena(text.encode())
    order: list[int] = []

    def visit(node: int) -> None:
        order.append(node)
        child = tree.first_child(node)
        while child != ryml.NONE:
            visit(child)
            child = tree.next_sibling(child)

    visit(tree.root_id())
    assert order == list(range(tree.size()))


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
def test_tricky_but_valid_documents_load_the_same_on_every_path(text: str) -> None:
    _same(text)


def test_the_quickest_tier_refuses_what_it_cannot_vouch_for() -> None:
    for text in ["a: yes\n", "a: 1\na: 2\n", "1: x\n", "a: &x 1\nb: *x\n", "a: !!str 1\n",
                 "a: é\n", "a:\tb\n", "- a\n", "a: 1\n---\nb: 2\n", "a: 'open\n", "on: x\n"]:
        assert yamlryml.load(text, MAX_DEPTH) is None, text


def test_mutated_flows_read_by_the_quickest_tier_match_the_builder_and_print_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Flows with random edits: whatever the quickest tier accepts, it reads exactly as
    the event builder does, and rapidyaml never gets a file it refuses (it would print
    its complaint to stderr)."""
    rng = random.Random(5)
    flows = [flow_text(n, rng) for n in range(20)]
    pieces = ["'", '"', "\\", "#", " #", "{", "}", "[", "]", ",", "- ", ": ", "\n", "  ", "|-",
              ">+", "*", "&", "!", "?", "%", "@", "inf", "-.nan", "0x10", "1:30", "yes", "~"]
    accepted = 0
    for _ in range(1500):
        text = rng.choice(flows)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.5:
                text = text[:at] + rng.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rng.randint(1, 5):]
        data = yamlryml.load(text, MAX_DEPTH)
        if data is not None:
            accepted += 1
            slow = load(text, fast=False)
            assert (repr(data), slow.problems) == (repr(slow.data), []), text
    assert accepted > 300  # the tier was really exercised
    assert capfd.readouterr().err == ""
