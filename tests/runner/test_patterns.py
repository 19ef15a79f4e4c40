"""runner.model.patterns: input patterns match with a time limit, at validation and at /run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.errors import InputError
from runner.model import patterns
from runner.model.flows import InputSpec, InputType
from runner.running.inputs import PATTERN_TOO_SLOW, coerce_inputs
from runner.validation.validate import validate_text

CATASTROPHIC = "(a|aa)+$"  # exponential backtracking in any backtracking engine
HOSTILE = "a" * 40 + "b"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_full_match_matches_in_full() -> None:
    assert patterns.full_match(r"v\d+\.\d+", "v1.2") is True
    assert patterns.full_match(r"v\d+\.\d+", "v1.2; rm -rf /") is False


def test_a_catastrophic_pattern_gives_up_instead_of_hanging() -> None:
    assert patterns.full_match(CATASTROPHIC, HOSTILE, timeout=0.05) is None
    assert patterns.full_match(CATASTROPHIC, "aaaa") is True  # short input: fine


def test_an_invalid_pattern_raises_value_error() -> None:
    assert patterns.compile_error("([a-z]") is not None
    assert patterns.compiled("([a-z]") is None
    with pytest.raises(ValueError):
        patterns.full_match("([a-z]", "a")


def test_run_input_against_a_catastrophic_pattern_is_an_input_error() -> None:
    specs = {"name": InputSpec("name", InputType.STRING, pattern=CATASTROPHIC)}
    with pytest.raises(InputError) as info:
        coerce_inputs(specs, {"name": HOSTILE})
    assert info.value.name == "name"
    assert info.value.problem == PATTERN_TOO_SLOW
    assert coerce_inputs(specs, {"name": "aa"}) == {"name": "aa"}


def test_run_input_against_an_invalid_pattern_is_an_input_error() -> None:
    specs = {"name": InputSpec("name", InputType.STRING, pattern="([a-z]")}
    with pytest.raises(InputError, match="not a valid regular expression"):
        coerce_inputs(specs, {"name": "a"})


FLOW = f"""\
id: slow
inputs:
  word: {{type: string, pattern: "{CATASTROPHIC}", default: "{HOSTILE}"}}
triggers:
  - type: schedule
    cron: "0 6 * * *"
    inputs: {{word: "{HOSTILE}c"}}
tasks:
  - id: a
    image: busybox:latest
    commands: [echo]
"""


def test_validation_reports_a_catastrophic_pattern_at_the_pattern() -> None:
    report = validate_text("flows/slow.yml", FLOW, now=NOW)
    assert [str(d) for d in report.diagnostics] == [
        "flows/slow.yml:3:33: error: inputs.word.pattern: pattern (a|aa)+$ took too long to "
        f'check text "{HOSTILE[:37]}..." (catastrophic backtracking); rewrite it so no part '
        "can match the same text in several ways, e.g. (a+)+ as a+",
    ]  # the default's and the trigger's values read the same: one diagnostic
