"""Validation of hostile or absurd flow files stays bounded: linear memory in the
flow's size, documented limits with positioned errors, and a per-file budget of
time and problems that ends with a clear error instead of a stalled bot."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

from runner.validation.diagnostics import Budget
from runner.validation.schema_messages import schema
from runner.validation.semantic_graph import Graph
from runner.validation.validate import validate_files, validate_text

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int, group_errors: int = 0) -> str:
    """A flow of ``n`` tasks, each needing the previous one and reading its output
    (and ``group_errors`` errors tasks chained the same way)."""
    lines = ["id: chain", "tasks:"]
    lines += _chained(n, "t")
    if group_errors:
        lines += ["errors:", *_chained(group_errors, "e")]
    return "\n".join(lines) + "\n"


def _chained(n: int, prefix: str) -> list[str]:
    lines = []
    for i in range(n):
        if i == 0:
            lines.append(f"  - {{id: {prefix}0, image: 'alpine:3', commands: [echo]}}")
            continue
        ref = f"echo {{{{ tasks.{prefix}{i - 1}.outputs.v }}}}"
        lines.append(
            f"  - {{id: {prefix}{i}, image: 'alpine:3', commands: ['{ref}'], "
            f"needs: [{prefix}{i - 1}]}}"
        )
    return lines


def _peak(text: str) -> int:
    tracemalloc.start()
    try:
        report = validate_text("chain.yml", text.encode(), now=NOW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok, report.diagnostics[:3]
    return peak


def test_a_chain_of_tasks_validates_in_linear_memory() -> None:
    validate_text("warm.yml", chain(20, 5).encode(), now=NOW)  # compile schema, caches
    half, full = _peak(chain(250, 50)), _peak(chain(500, 100))
    # Each task's transitive upstream used to be a set of its own: n²/2 entries.
    assert full < 3 * half, (half, full)


def test_outputs_of_a_far_upstream_task_still_resolve_in_a_long_chain() -> None:
    lines = chain(400).splitlines()
    lines.append(
        "  - {id: last, image: 'alpine:3', commands: ['echo {{ tasks.t0.outputs.v }}'], "
        "needs: [t399]}"
    )
    lines.append("  - {id: other, image: 'alpine:3', commands: ['echo {{ tasks.t5.outputs.v }}']}")
    report = validate_text("far.yml", "\n".join(lines) + "\n", now=NOW)
    assert [d.message for d in report.errors] == [
        'tasks[401].commands[0]: "{{ tasks.t5.outputs.v }}": task "t5" is not upstream of '
        '"other"; add "t5" to its needs (directly or through another task) so its outputs '
        "exist when it runs"
    ]


def test_errors_tasks_see_main_tasks_and_their_upstream_errors_tasks() -> None:
    text = chain(3, 3) + (
        "  - {id: e9, image: 'alpine:3', commands: ['{{ tasks.e1.outputs.v }} "
        "{{ tasks.t2.outputs.v }} {{ tasks.e7.outputs.v }}'], needs: [e2]}\n"
    )
    report = validate_text("errors.yml", text, now=NOW)
    assert [d.message for d in report.errors] == [
        'errors[3].commands[0]: "{{ tasks.e7.outputs.v }}": no task "e7"'
    ]


def test_a_flow_over_the_tasks_limit_is_refused_at_the_first_task_too_many() -> None:
    limit = schema()["properties"]["tasks"]["maxItems"]
    assert limit == 500
    report = validate_text("big.yml", chain(limit + 1), now=NOW)
    assert [str(d) for d in report.diagnostics] == [
        "big.yml:503:5: error: tasks: 501 tasks; a flow may have at most 500 tasks; "
        "split it into several smaller flows"
    ]
    assert validate_text("ok.yml", chain(limit), now=NOW).ok


def test_the_issue_chain_of_ten_thousand_tasks_gets_one_error_cheaply() -> None:
    report = validate_text("huge.yml", chain(10_000), now=NOW)
    assert [d.message for d in report.diagnostics] == [
        "tasks: 10000 tasks; a flow may have at most 500 tasks; split it into several smaller flows"
    ]


def test_over_limit_errors_tasks_and_triggers_are_named_too() -> None:
    triggers = "".join(f"  - {{type: schedule, id: s{i}, cron: '@daily'}}\n" for i in range(51))
    report = validate_text("many.yml", chain(2, 101) + "triggers:\n" + triggers, now=NOW)
    assert [d.message for d in report.diagnostics] == [
        "errors: 101 errors tasks; a flow may have at most 100 errors tasks; "
        "let fewer tasks do the clean-up",
        "triggers: 51 triggers; a flow may have at most 50 triggers; "
        "combine schedules or split the flow",
    ]


def _stepping_clock(step: float) -> Callable[[], float]:
    """A clock that moves ``step`` seconds each time it is read."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_a_file_that_takes_too_long_is_stopped_with_a_clear_error() -> None:
    budget = Budget(seconds=30, clock=_stepping_clock(1.0))
    report = validate_text("slow.yml", chain(100), now=NOW, budget=budget)
    assert [str(d) for d in report.diagnostics] == [
        "slow.yml:1:1: error: validation of this file took longer than 30s and was stopped; "
        "split the flow into smaller files or simplify it"
    ]
    assert report.flow is None
    # The same file within its budget is fine.
    assert validate_text("slow.yml", chain(100), now=NOW, budget=Budget(seconds=1e9)).ok


def test_each_file_of_a_repository_has_its_own_budget() -> None:
    budget = Budget(seconds=30, clock=_stepping_clock(1.0))
    files = {"flows/a.yml": chain(100).encode(), "flows/b.yml": b"id: b\ntasks: []\n"}
    report = validate_files(files, now=NOW, budget=budget)
    assert [d.message for d in report.files[0].errors][0].startswith(
        "validation of this file took longer than 30s"
    )
    assert [d.message for d in report.files[1].errors] == ["tasks: must not be empty"]


def test_problems_past_the_cap_stop_validation_with_a_note() -> None:
    needs = ", ".join(f"missing{i}" for i in range(1000))
    text = f"id: f\ntasks:\n  - {{id: a, image: 'alpine:3', commands: [x], needs: [{needs}]}}\n"
    report = validate_text("many.yml", text, now=NOW)
    assert len(report.errors) == 201
    assert report.errors[-1].message.startswith(
        "more than 200 problems in this file; validation stopped here"
    )


def test_duplicates_among_many_unsortable_items_are_found_in_linear_time() -> None:
    # jsonschema compares mappings pairwise: 30,000 of them took minutes.
    items = ", ".join(f"{{k: {i}}}" for i in range(30_000))
    task = f"{{id: a, image: 'alpine:3', commands: [x], needs: [{items}, {{k: 0}}]}}"
    text = f"id: f\ntasks:\n  - {task}\n"
    report = validate_text("dupes.yml", text, now=NOW, budget=Budget(max_errors=5))
    messages = [d.message for d in report.errors]
    assert "tasks[0].needs: a mapping is listed more than once" in messages


def test_a_repository_has_a_budget_for_all_its_files_together() -> None:
    budget = Budget(seconds=1e9, repo_seconds=50, clock=_stepping_clock(1.0))
    files = {f"flows/f{i}.yml": chain(5).replace("id: chain", f"id: c{i}").encode()
             for i in range(20)}
    report = validate_files(files, now=NOW, budget=budget)
    stopped = [f.path for f in report.files if not f.ok]
    assert 0 < len(stopped) < 20  # the first files were validated, the rest were not
    assert [d.message for d in report.files[-1].diagnostics] == [
        "not validated: the repository's flow files took longer than 50s in all; "
        "make the flows fewer or simpler"
    ]


def test_one_flow_id_in_many_files_names_a_few_others_each() -> None:
    files = {f"flows/f{i:03}.yml": chain(1).encode() for i in range(300)}
    report = validate_files(files, now=NOW)
    [first] = report.files[0].errors
    assert first.message == (
        'id: flow id "chain" is also used by flows/f001.yml, flows/f002.yml, flows/f003.yml, '
        "flows/f004.yml, flows/f005.yml and 294 more; flow ids must be unique"
    )


def _traced_peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_repository_of_big_files_holds_one_parse_at_a_time() -> None:
    def hostile(i: int) -> bytes:  # 100,000 tiny items: a parse ~100x the text
        return f"id: f{i}\ntasks: [".encode() + b"0," * 100_000 + b"0]\n"

    validate_text("warm.yml", hostile(0), now=NOW)
    one = _traced_peak(lambda: validate_files({"flows/f0.yml": hostile(0)}, now=NOW))
    files = {f"flows/f{i}.yml": hostile(i) for i in range(6)}
    six = _traced_peak(lambda: validate_files(files, now=NOW))
    assert six < 2 * one, (one, six)
    # Duplicate ids among valid flows are still placed at their id.
    dupes = {"flows/a.yml": b"# a\n" + chain(2).encode(), "flows/b.yml": chain(2).encode()}
    report = validate_files(dupes, now=NOW)
    assert [(d.path, d.line, d.col) for d in report.errors] == [
        ("flows/a.yml", 2, 5), ("flows/b.yml", 1, 5)]


def _reachable(task: str, needs: dict[str, list[str]]) -> set[str]:
    """The plain definition: every task reached by following needs from ``task``."""
    seen: set[str] = set()
    stack = list(needs[task])
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(needs[name])
    return seen


def test_upstream_answers_match_a_plain_search_on_random_graphs_with_cycles() -> None:
    rng = random.Random(9)
    for _ in range(200):
        names = [f"t{i}" for i in range(rng.randint(1, 12))]
        needs = {name: rng.sample(names, k=rng.randint(0, min(3, len(names))))
                 for name in rng.sample(names, k=len(names))}  # any order, self-needs too
        graph = Graph(needs)
        for task in names:
            expected = _reachable(task, needs)
            assert {n for n in names if n in graph.upstream_of(task)} == expected
            assert set(graph.upstream_of(task)) == expected


def test_long_template_strings_are_not_kept_by_the_scan_cache() -> None:
    from runner.validation import templcheck

    long_text = "echo {{ run.id }} " + "x" * 100_000
    text = f"id: f\ntasks:\n  - {{id: a, image: 'alpine:3', commands: ['{long_text}']}}\n"
    templcheck._scanned.cache_clear()
    assert validate_text("long.yml", text, now=NOW).ok
    assert templcheck._scanned.cache_info().currsize == 0


def test_template_scan_is_linear_and_matches_the_regex_it_replaces() -> None:
    from runner.model import templates

    rng = random.Random(3)
    alphabet = ["{", "}", "{{", "}}", " ", "x", ".", "inputs", "\n"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        spans = [(m.start(), m.end()) for m in templates._TEMPLATE.finditer(text)]
        assert [(r.start, r.end) for r in templates.scan(text)] == spans, text
        assert templates.has_unclosed(text) == ("{{" in templates._TEMPLATE.sub("", text)), text
    # 200,000 unclosed "{{" (the regex retried its lazy scan from each: minutes).
    text = f"id: f\ntasks:\n  - {{id: a, image: b, commands: ['{'{{ ' * 200_000}']}}\n"
    report = validate_text("open.yml", text, now=NOW)
    assert [d.message for d in report.errors] == [
        'tasks[0].commands[0]: "{{" is never closed with "}}"']


def test_messages_quoting_huge_names_are_cut_in_the_middle() -> None:
    name = "n" * 300_000
    text = f"id: f\ntasks:\n  - {{id: a, image: b, commands: [x], needs: [{name}]}}\n"
    [error] = validate_text("huge-name.yml", text, now=NOW).errors
    assert len(error.message) <= 1000
    assert error.message.startswith('tasks[0].needs[0]: needs "nnnn')
    assert error.message.endswith('nnnn", but there is no such task; the flow has no other tasks')
    assert " … " in error.message
