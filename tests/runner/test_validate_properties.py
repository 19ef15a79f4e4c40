"""Property tests: no input makes the loader or validator raise or hang."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.loading.yamlload import load
from runner.validation.validate import FileReport, validate_text

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of YAML (and of flows) that, shuffled together, reach odd parser states.
_TOKENS = [
    "id: ", "tasks:", "\n", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ",
    "? ", "|", ">", "'", '"', "#", "---\n", "...\n", "\t", "on", "yes", "010", "1:30", "~",
    "{{ inputs.x }}", "{{", "}}", "image: busybox", "commands: [echo]", "needs: [a]", "id: a",
    "cron: '0 0 30 2 *'", "triggers:", "type: schedule", "timezone: Europe/Berlin", "\x00",
    "\ufeff", "é", "%YAML 1.1\n", "<<: ", "inputs:", "default: ", "errors:", "script: |",
]
yamlish = st.lists(st.sampled_from(_TOKENS) | st.text(max_size=5), max_size=60).map("".join)


def _flow(tasks: list[tuple[str, list[str], str]]) -> str:
    lines = ["id: gen", "inputs:", "  x: {type: string, default: a}", "tasks:"]
    for task_id, needs, command in tasks:
        lines += [f"  - id: {task_id}", "    image: busybox", f"    needs: {needs}"]
        lines += [f"    commands: [{command!r}]"]
    return "\n".join(lines) + "\n"


ids = st.sampled_from(["a", "b", "c", "d", "A", "a b", ""])
commands = st.sampled_from(
    ["echo", "echo {{ tasks.a.outputs.x }}", "{{ inputs.x }}", "echo {{", "{{ run.error }}"]
)
flows = st.lists(st.tuples(ids, st.lists(ids, max_size=3), commands), max_size=5).map(_flow)


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_report(data: bytes) -> None:
    assert isinstance(validate_text("f.yml", data, now=NOW), FileReport)


@FAST
@given(yamlish)
def test_arbitrary_yamlish_text_gives_a_report(text: str) -> None:
    report = validate_text("f.yml", text, now=NOW)
    assert isinstance(report, FileReport)
    assert all(d.line >= 1 and d.col >= 1 for d in report.diagnostics)
    assert report.ok == (report.flow is not None)
    assert not any("internal error" in d.message for d in report.diagnostics)


@FAST
@given(yamlish)
def test_loader_positions_are_one_based(text: str) -> None:
    loaded = load(text)
    assert all(line >= 1 and col >= 1 for line, col in loaded.values.values())
    assert (loaded.data is None) <= bool(loaded.problems)


@FAST
@given(flows)
def test_generated_flows_give_a_report_and_errors_block_the_model(text: str) -> None:
    report = validate_text("f.yml", text, now=NOW)
    assert report.ok == (report.flow is not None)
    assert all(str(d).startswith("f.yml:") for d in report.diagnostics)
    assert not any("internal error" in d.message for d in report.diagnostics)
