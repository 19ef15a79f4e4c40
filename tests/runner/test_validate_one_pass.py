"""Every problem in one pass: a schema error in one part of a file hides none of
the problems the semantic checks find in the other parts, and the stand-ins
that take a malformed part's place are never reported."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.validation.repair import STUB_PREFIX
from runner.validation.validate import validate_text
from tests.runner.test_validate_schema_fast import _paths

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Invalid corpus files whose problems are all beyond the schema.
SEMANTIC_ONLY = ["cron", "cycles", "needs", "templates", "timezone", "trigger-inputs",
                 "duplicate-ids", "images", "inputs", "resources"]


def _messages(text: str | bytes) -> set[str]:
    report = validate_text("f.yml", text, now=NOW)
    return {f"{d.line}:{d.col}: {d.message}" for d in report.diagnostics}


@pytest.mark.parametrize("name", SEMANTIC_ONLY)
def test_a_schema_error_elsewhere_hides_none_of_the_semantic_problems(name: str) -> None:
    text = (CORPUS / "invalid" / f"{name}.yml").read_text(encoding="utf-8")
    alone = _messages(text)
    assert alone
    with_schema_error = _messages(text.rstrip("\n") + "\nbogus_key: 1\n")
    assert alone < with_schema_error  # all of them, plus the unknown key
    [extra] = with_schema_error - alone
    assert 'unknown key "bogus_key"' in extra


def test_a_task_without_image_and_a_bad_cron_are_both_reported_at_their_places() -> None:
    text = ('id: f\ntriggers:\n  - type: schedule\n    cron: "61 * * * *"\n'
            "tasks:\n  - id: a\n    commands: [echo]\n")
    assert _messages(text) == {
        '4:11: triggers[0].cron: invalid cron expression: field 1 (minute) "61" is not valid; '
        "allowed: 0-59",
        '6:5: tasks[0]: missing required key "image"',
    }


def test_a_malformed_task_keeps_its_id_for_the_needs_of_the_others() -> None:
    text = ("id: f\ntasks:\n  - id: extract\n    commands: [echo]\n"
            "  - id: load\n    image: busybox\n    needs: [extract, nope]\n    commands: [echo]\n")
    messages = _messages(text)
    assert '3:5: tasks[0]: missing required key "image"' in messages
    [need] = [m for m in messages if "needs[" in m]
    assert need.startswith('7:22: tasks[1].needs[1]: needs "nope", but there is no such task')
    assert need.endswith("the tasks are: extract")


def test_values_given_for_a_malformed_input_are_not_judged_by_a_stand_in() -> None:
    text = ("id: f\ninputs:\n  day: {type: integer}\ntriggers:\n"
            "  - {type: schedule, cron: '0 0 * * *', inputs: {day: 5}}\n"
            "tasks:\n  - {id: a, image: busybox, commands: ['echo {{ inputs.day }}']}\n")
    [message] = _messages(text)
    assert "inputs.day.type: expected one of" in message


JUNK: list[Any] = [None, 5, "junk text", [], {}, [1, "a"], {"a": 1}, True, "Bad Id", "0s",
                   "61 * * * *", ["nope"], "{{ inputs.zz }}"]


def test_broken_parts_never_crash_the_checks_nor_show_a_stand_in() -> None:
    rng = random.Random(11)
    flows = [yaml.safe_load(p.read_text(encoding="utf-8"))
             for p in sorted((CORPUS / "valid").glob("*.yml"))]
    for _ in range(150):
        data = copy.deepcopy(rng.choice(flows))
        for _ in range(rng.randint(1, 3)):
            paths = [p for p in _paths(data) if p]
            if not paths:
                break  # every key is gone
            path = rng.choice(paths)
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            if rng.random() < 0.4 and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(JUNK))
        for message in _messages(yaml.safe_dump(data)):
            assert "internal error" not in message
            assert STUB_PREFIX not in message
            assert "busybox" not in message or "busybox" in yaml.safe_dump(data)
