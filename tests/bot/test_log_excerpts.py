"""What a run printed, made safe for a comment: fences, mentions, references, size."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.handlers.log_excerpts import (
    BODY_BUDGET,
    EXCERPT_MAX_CHARS,
    JOINER,
    TaskExcerpt,
    excerpt_markdown,
    excerpts_markdown,
    fenced,
    last_lines,
    neutralise,
)
from bot.handlers.render import run_comment
from runner.state.records import RunRecord, Status, TaskRow, Trigger, TriggerType

HOSTILE = ("ok\n```\n</details>\n@octocat please look\nfixes #1 and GH-2 and octo/flows#3\n"
           "````` five\n\x1b[31mred\x1b[0m and a bell\x07\n")
# What GitHub links or pings in text: a mention, #N, GH-N, owner/repo#N.
_LINKED = re.compile(r"(?<![\w\u2060])@[A-Za-z0-9-]+|#\d+|\bGH-\d+")


def _fence_of(block: str) -> str:
    return block.split("\n", 1)[0].removesuffix("text")


def test_a_fence_is_longer_than_any_backtick_run_so_nothing_closes_it() -> None:
    block = fenced("a ``` b\n`````\nc")
    fence = _fence_of(block)
    assert fence == "`" * 6 and block.endswith("\n" + fence)
    inner = block.split("\n")[1:-1]
    assert not any(line.strip().startswith(fence) for line in inner)
    assert _fence_of(fenced("plain")) == "```"


def test_mentions_and_references_are_broken_and_escapes_dropped() -> None:
    text = neutralise(HOSTILE)
    assert not _LINKED.search(text)
    assert f"@{JOINER}octocat" in text and f"#{JOINER}1" in text and f"GH{JOINER}-2" in text
    assert f"octo/flows#{JOINER}3" in text
    assert "\x1b" not in text and "\x07" not in text and "red and a bell" in text
    assert "a1b2c3d" in neutralise("commit a1b2c3d")  # shas may stay linked


def test_last_lines_keeps_the_end_and_says_so() -> None:
    text = "\n".join(f"line {n}" for n in range(100))
    tail = last_lines(text)
    assert tail.splitlines()[0].startswith("[flowbot: earlier lines")
    assert tail.splitlines()[1:] == [f"line {n}" for n in range(70, 100)]
    assert last_lines("one\ntwo\n") == "one\ntwo"
    long = last_lines("x" * 50_000, limit=1_000)
    assert len(long) < 1_100 and long.endswith("x")


def test_an_excerpt_holds_outputs_and_log_in_details() -> None:
    block = excerpt_markdown(TaskExcerpt("greet", {"total": "42", "who": "@octocat"},
                                         "hello\nTotal: 42\n"))
    assert block.count("<details") == 2 and block.count("</details>") == 2
    assert "<summary>Outputs of <code>greet</code></summary>" in block
    assert "total=42" in block and f"who=@{JOINER}octocat" in block
    assert "Total: 42" in block and "(last 30 lines)" in block


def test_a_hostile_failure_log_stays_inside_its_fence() -> None:
    block = excerpt_markdown(TaskExcerpt("boom", {}, HOSTILE, failed=True))
    head, rest = block.split("\n\n", 1)
    assert head == ("<details open><summary>Failure log of <code>boom</code> "
                    "(last 30 lines)</summary>")
    fence = _fence_of(rest)
    assert len(fence) == 6
    body, after = rest[len(fence) + len("text\n"):].split("\n" + fence + "\n", 1)
    assert "</details>" in body and "```" in body  # shown as text, inside the fence
    assert after == "\n</details>"
    assert not _LINKED.search(block)


def test_excerpts_stay_within_the_budget_with_a_note() -> None:
    big = "\n".join("y" * 300 for _ in range(40))
    many = [TaskExcerpt(f"t{n}", {"out": "z" * 20_000}, big) for n in range(20)]
    text = excerpts_markdown(many)
    assert len(text) <= BODY_BUDGET
    assert "more task excerpt(s) not shown" in text
    one = excerpts_markdown(many[:1])
    assert len(one) < 2 * EXCERPT_MAX_CHARS + 500 and "[flowbot: the rest is not shown]" in one
    small = excerpts_markdown(many[:3], budget=6_000)
    assert len(small) <= 6_000


def test_a_runs_error_line_pings_and_links_nothing() -> None:
    moment = datetime(2026, 11, 30, tzinfo=UTC)
    run = RunRecord("r1", "acme/flows", "hello", "d", {}, "flows/hello.yml", "a" * 40,
                    Trigger(TriggerType.MANUAL, "octocat"), {}, Status.FAILED,
                    "cannot prepare the run's files: @octocat broke #1", "t", moment, moment,
                    moment)
    task = TaskRow("r1", "t", 0, False, Status.FAILED, 1, 1, "exit code 1 | see @team", None,
                   None)
    body = run_comment(run, [task], "http://bot/runs/r1")
    assert "@octocat" not in body and "#1 " not in body and "@team" not in body
    assert f"@{JOINER}octocat broke #{JOINER}1" in body
