"""runner.yamlfast: the composer fast path gives exactly what the event builder gives."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import yamlfast
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
    if isinstance(slow.data, dict):  # top-level positions, answered before the full walk
        for key in [*slow.data, "nope"]:
            assert fast.value_pos((key,)) == slow.value_pos((key,))
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
        _same(text)


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
