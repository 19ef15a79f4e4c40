"""Benchmark: time and peak memory to validate long chains of tasks.

The case of issue 9 (#5): a flow of 10,000 tasks, each needing the one before
and reading its output (~0.9 MB), once took 18 s and 3.18 GB to validate. It is
now refused at the 500-task limit; its needs analysis is also shown without the
limit (the semantic checks run straight on the loaded data) to show it is
linear. Next to each: a baseline measured in the same run on the same text,
``yaml.safe_load`` (C) plus jsonschema (no positions, no semantic checks).

Each figure comes from a fresh forked child: CPU seconds from a pass without
tracing, peak memory (tracemalloc, Python allocations) from another. The
isolated line is measured in wall time (its work happens in a grandchild),
and its peak is what the calling process holds.

    .venv/bin/python bench/chain_memory.py [--tasks N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.loading import yamlload  # noqa: E402
from runner.validation import semantic  # noqa: E402
from runner.validation.diagnostics import Reporter  # noqa: E402
from runner.validation.schema_messages import schema  # noqa: E402
from runner.validation.validate import validate_text  # noqa: E402
from runner.validation.validate_sandbox import validate_isolated  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def chain(tasks: int, errors: int = 0) -> str:
    """``tasks`` tasks (and ``errors`` errors tasks), each needing the one before and
    reading its output."""
    lines = ["id: chain", "tasks:", *_tasks(tasks, "t")]
    if errors:
        lines += ["errors:", *_tasks(errors, "e")]
    return "\n".join(lines) + "\n"


def _tasks(n: int, prefix: str) -> list[str]:
    lines = [f"  - {{id: {prefix}0, image: alpine:3, commands: [echo]}}"]
    for i in range(1, n):
        before = f"{prefix}{i - 1}"
        lines.append(f"  - {{id: {prefix}{i}, image: alpine:3, needs: [{before}], "
                     f"commands: ['echo {{{{ tasks.{before}.outputs.v }}}}']}}")
    return lines


def flowbot(text: bytes) -> str:
    report = validate_text("chain.yml", text, now=NOW)
    return "valid" if report.ok else report.errors[0].message[:60]


def isolated(text: bytes) -> str:
    """As the bot validates a pull request: in a forked child with hard limits."""
    report = validate_isolated({"chain.yml": text}, now=NOW, memory_bytes=1 << 30, seconds=120)
    return "valid" if report.ok else report.errors[0].message[:60]


def needs_only(text: bytes) -> str:
    """The semantic checks (needs graph, templates) on loaded data, past the limits."""
    loaded = yamlload.load(text)
    report = Reporter("chain.yml", loaded)
    semantic.check(loaded.data, report, NOW)
    return f"{len(report.diagnostics)} problems"


_VALIDATOR = Draft202012Validator(schema())


def baseline(text: bytes) -> str:
    data = yaml.load(text, Loader=yaml.CSafeLoader)
    errors = list(_VALIDATOR.iter_errors(data))
    return "valid" if not errors else f"{len(errors)} schema errors"


def _in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.write(write, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        figures = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(figures)
    return result


def measure(run: Callable[[bytes], str], text: bytes) -> tuple[float, float, str]:
    """CPU seconds, peak traced MB and the outcome of ``run(text)``."""

    def timed() -> dict[str, Any]:
        clock = time.perf_counter if run is isolated else time.process_time
        start = clock()
        outcome = run(text)
        return {"cpu": clock() - start, "outcome": outcome}

    def traced() -> dict[str, Any]:
        tracemalloc.start()
        run(text)
        return {"peak": tracemalloc.get_traced_memory()[1]}

    timing, memory = _in_child(timed), _in_child(traced)
    return float(timing["cpu"]), float(memory["peak"]) / 1e6, str(timing["outcome"])


def report(label: str, text: bytes) -> None:
    print(f"\n{label}: {len(text):,} bytes")
    for name, run in (("baseline: yaml.safe_load (C) + jsonschema", baseline),
                      ("flowbot validate", flowbot),
                      ("flowbot validate, isolated child (PR path)", isolated),
                      ("flowbot load + needs/template checks, no limit", needs_only)):
        cpu, peak, outcome = measure(run, text)
        print(f"  {name:<48} {cpu:7.3f} s CPU  {peak:8.1f} MB peak  -> {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in the long chain")
    args = parser.parse_args()
    limits = schema()["properties"]
    at_limit = chain(limits["tasks"]["maxItems"], limits["errors"]["maxItems"])
    report(f"chain of {args.tasks:,} tasks (issue 9 #5: 18 s, 3.18 GB before)",
           chain(args.tasks).encode())
    report(f"chain at the limits ({limits['tasks']['maxItems']} tasks, "
           f"{limits['errors']['maxItems']} errors tasks)", at_limit.encode())


if __name__ == "__main__":
    main()
