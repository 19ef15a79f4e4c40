"""Input coercion: typed values, defaults, and errors that name the input."""

from __future__ import annotations

import pytest

from runner.errors import InputError
from runner.model.flows import InputSpec, InputType
from runner.running.inputs import coerce_inputs, input_env

SPECS = {
    "count": InputSpec("count", InputType.INT, default=3),
    "ratio": InputSpec("ratio", InputType.FLOAT),
    "dry_run": InputSpec("dry_run", InputType.BOOL, default=False),
    "env": InputSpec("env", InputType.CHOICE, choices=("staging", "prod"), required=True),
    "tag": InputSpec("tag", InputType.STRING, pattern=r"v\d+\.\d+"),
}


def _problem(given: dict[str, object], specs: dict[str, InputSpec] = SPECS) -> tuple[str, str]:
    with pytest.raises(InputError) as info:
        coerce_inputs(specs, given)
    return info.value.name, info.value.problem


def test_strings_become_typed_values_and_defaults_fill_in() -> None:
    values = coerce_inputs(SPECS, {"env": "prod", "ratio": "0.5", "tag": "v1.2"})
    assert values == {"count": 3, "ratio": 0.5, "dry_run": False, "env": "prod", "tag": "v1.2"}
    assert isinstance(values["count"], int)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), ("false", False), ("no", False), ("0", False)],
)
def test_bool_spellings(text: str, expected: bool) -> None:
    assert coerce_inputs(SPECS, {"env": "prod", "dry_run": text})["dry_run"] is expected


def test_typed_values_from_schedule_yaml_are_accepted() -> None:
    values = coerce_inputs(SPECS, {"env": "prod", "count": 7, "dry_run": True, "ratio": 2})
    assert (values["count"], values["dry_run"], values["ratio"]) == (7, True, 2.0)


@pytest.mark.parametrize(
    ("given", "name", "problem"),
    [
        ({"env": "prod", "count": "abc"}, "count", "expected a whole number, got 'abc'"),
        ({"env": "prod", "count": "1.5"}, "count", "expected a whole number, got '1.5'"),
        ({"env": "prod", "count": True}, "count", "expected a whole number, got True"),
        ({"env": "prod", "ratio": "nan"}, "ratio", "expected a number, got 'nan'"),
        ({"env": "prod", "ratio": "x"}, "ratio", "expected a number, got 'x'"),
        (
            {"env": "prod", "dry_run": "maybe"},
            "dry_run",
            "expected true/false (also yes/no, 1/0), got 'maybe'",
        ),
        ({"env": "dev"}, "env", "expected one of staging, prod, got 'dev'"),
        ({}, "env", "required; no default"),
        (
            {"env": "prod", "tag": "v1.2; rm -rf /"},
            "tag",
            r"expected text matching the pattern v\d+\.\d+ in full, got 'v1.2; rm -rf /'",
        ),
    ],
)
def test_errors_name_the_input_and_what_it_expects(
    given: dict[str, object], name: str, problem: str
) -> None:
    assert _problem(given) == (name, problem)


def test_pattern_must_match_in_full_not_just_a_prefix() -> None:
    assert _problem({"env": "prod", "tag": "v1.2x"})[0] == "tag"


def test_unknown_input_suggests_the_closest_and_lists_the_rest() -> None:
    name, problem = _problem({"env": "prod", "cuont": "1"})
    assert name == "cuont"
    assert problem == (
        "is unknown (did you mean 'count'?); "
        "this flow takes: count, dry_run, env, ratio, tag"
    )


def test_unknown_input_for_a_flow_without_inputs() -> None:
    assert _problem({"x": "1"}, {}) == ("x", "is unknown; this flow takes no inputs")


def test_unknown_input_in_the_wrong_case_names_the_right_one() -> None:
    assert _problem({"COUNT": "1", "env": "prod"}) == ("COUNT", (
        "is unknown (did you mean 'count'? input names are case-sensitive); "
        "this flow takes: count, dry_run, env, ratio, tag"))


def test_bad_default_is_reported_too() -> None:
    specs = {"n": InputSpec("n", InputType.INT, default="many")}
    assert _problem({}, specs) == ("n", "expected a whole number, got 'many'")


def test_input_env_upper_cases_names_and_spells_bools() -> None:
    values = coerce_inputs(SPECS, {"env": "prod", "dry_run": "yes"})
    assert input_env(values) == {
        "INPUT_COUNT": "3",
        "INPUT_RATIO": "",
        "INPUT_DRY_RUN": "true",
        "INPUT_ENV": "prod",
        "INPUT_TAG": "",
    }
