"""What a run printed, made safe to show in a GitHub comment or issue (pure).

Task logs and outputs are hostile text: they may hold backticks that would end
a code fence, ``@login`` that would ping someone, ``#12`` / ``GH-12`` /
``owner/repo#12`` that would link an issue, HTML, terminal escapes, and any
amount of it. :func:`excerpts_markdown` shows each task's outputs and log tail
in a collapsible ``<details>`` block, inside a fence longer than any backtick
run of the text, with mentions and references broken by a word joiner (which
GitHub does not link across), each excerpt and the whole cut to a budget.

Logs are stored masked and outputs are masked when they are read, so nothing
here sees a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LOG_TAIL_LINES = 30
EXCERPT_MAX_CHARS = 8_000  # one task's outputs or log tail
BODY_BUDGET = 60_000  # a whole comment or issue body, well under GitHub's 65,536
JOINER = "\u2060"  # WORD JOINER: invisible, and GitHub links no mention or reference across it
HEADING = "<details{open}><summary>{what} of <code>{task}</code>{note}</summary>"
EARLIER_CUT = "[flowbot: earlier lines not shown]"
VALUE_CUT = "[flowbot: the rest is not shown]"
NOT_SHOWN = ("_{count} more task excerpt(s) not shown here, to stay within GitHub's size "
             "limit: see the run page._")

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# "@login", "#12", "owner/repo#12", "GH-12": break each after its sigil.
_REFERENCE = re.compile(r"([@#])(?=[\w-])|\b(GH)(?=-\d)", re.IGNORECASE)
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class TaskExcerpt:
    """One task's part of what a run printed: its outputs and its log's last lines."""

    task_id: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    log_tail: str | None = None  # already masked (logs are stored masked)
    failed: bool = False


def neutralise(text: str) -> str:
    """``text`` without terminal escapes or control characters, and with every
    mention and issue reference broken so GitHub neither pings nor links it."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))
    return _REFERENCE.sub(lambda m: (m.group(1) or m.group(2)) + JOINER, text)


def fenced(text: str) -> str:
    """``text`` in a code fence no line of it can close: longer than its longest
    run of backticks (GitHub ends a fence only with one at least as long)."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def last_lines(text: str, count: int = LOG_TAIL_LINES, limit: int = EXCERPT_MAX_CHARS) -> str:
    """The last ``count`` lines of ``text``, at most ``limit`` characters, saying
    so when earlier lines are left out."""
    lines = text.rstrip("\n").splitlines()
    kept = lines[-count:]
    joined = "\n".join(kept)
    if len(joined) > limit:
        joined = joined[-limit:]
        joined = joined[joined.find("\n") + 1:] if "\n" in joined else joined
    if len(kept) < len(lines) or len(joined) < len("\n".join(kept)):
        joined = f"{EARLIER_CUT}\n{joined}"
    return joined


def _outputs_text(outputs: Mapping[str, str], limit: int) -> str:
    text = "\n".join(f"{name}={value}" for name, value in sorted(outputs.items()))
    return text if len(text) <= limit else f"{text[:limit]}\n{VALUE_CUT}"


def excerpt_markdown(excerpt: TaskExcerpt, limit: int = EXCERPT_MAX_CHARS) -> str:
    """One task's collapsible block: its outputs, then its log's last lines."""
    blocks: list[str] = []
    task = neutralise(excerpt.task_id).replace("<", "&lt;")
    if excerpt.outputs:
        blocks += [HEADING.format(open=" open", what="Outputs", task=task, note=""), "",
                   fenced(neutralise(_outputs_text(excerpt.outputs, limit))), "", "</details>"]
    if excerpt.log_tail and excerpt.log_tail.strip():
        tail = last_lines(neutralise(excerpt.log_tail), limit=limit)
        what = "Log" if not excerpt.failed else "Failure log"
        blocks += [HEADING.format(open=" open" if excerpt.failed else "", what=what, task=task,
                                  note=f" (last {LOG_TAIL_LINES} lines)"), "",
                   fenced(tail), "", "</details>"]
    return "\n".join(blocks)


def excerpts_markdown(excerpts: Sequence[TaskExcerpt], budget: int = BODY_BUDGET) -> str:
    """Every excerpt that fits in ``budget`` characters, then a note naming how
    many did not."""
    shown: list[str] = []
    used = 0
    for index, excerpt in enumerate(excerpts):
        block = excerpt_markdown(excerpt, min(EXCERPT_MAX_CHARS, max(budget // 3, 200)))
        if not block:
            continue  # nothing printed and no outputs
        if used + len(block) + 2 > budget - len(NOT_SHOWN):
            shown.append(NOT_SHOWN.format(count=len(excerpts) - index))
            break
        shown.append(block)
        used += len(block) + 2
    return "\n\n".join(shown)
