"""runner/validate_sandbox.py: validation in a forked child with a real address-space
limit (RLIMIT_AS) and a real kill on overrun."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from runner.validate import validate_files
from runner.validate_sandbox import validate_isolated

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GOOD = b"id: good\ntasks:\n  - {id: t, image: 'alpine:3', commands: ['echo {{ run.id }}']}\n"
BAD = b"id: bad\ntasks:\n  - {id: t, image: 'alpine:3', comands: [x]}\n"
# 500,001 list items in 1 MiB: a parse of ~150 MB before the task limit is seen.
HOSTILE = b"id: hostile\ntasks: [" + b"0," * 500_000 + b"0]\n"


def _children() -> set[int]:
    """Our own child processes, from /proc (none may be left behind)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.add(int(entry))
    return found


def test_the_child_gives_the_same_report_as_validating_in_process() -> None:
    files = {"flows/good.yml": GOOD, "flows/bad.yml": BAD}
    isolated = validate_isolated(files, now=NOW, memory_bytes=512 << 20, seconds=60)
    direct = validate_files(files, now=NOW)
    assert [str(d) for d in isolated.diagnostics] == [str(d) for d in direct.diagnostics]
    assert isolated.flows == direct.flows and [f.id for f in isolated.flows] == ["good"]
    assert isolated.summary() == "1 of 2 flows invalid"


def test_a_child_over_its_memory_limit_is_stopped_with_a_clear_error() -> None:
    before = _children()
    files = {"flows/hostile.yml": HOSTILE, "flows/good.yml": GOOD}
    report = validate_isolated(files, now=NOW, memory_bytes=32 << 20, seconds=60)
    assert [str(d) for d in report.diagnostics] == [
        f"flows/{name}.yml:1:1: error: not validated: validating the flows needed more than "
        "32 MB and was stopped; make the flows smaller or fewer"
        for name in ("good", "hostile")
    ]
    assert report.flows == []
    assert _children() == before
    # With room, the same file gets its real answer.
    roomy = validate_isolated(files, now=NOW, memory_bytes=1 << 30, seconds=60)
    assert [d.message[:40] for d in roomy.errors] == ["tasks: 500001 tasks; a flow may have at "]


def test_a_child_over_its_time_is_killed_with_a_clear_error() -> None:
    before = _children()
    report = validate_isolated(
        {"flows/hostile.yml": HOSTILE}, now=NOW, memory_bytes=1 << 30, seconds=0.01)
    assert [d.message for d in report.errors] == [
        "not validated: validating the flows took longer than 0.01s and was stopped; "
        "make the flows smaller or fewer"
    ]
    assert _children() == before  # killed and reaped


def test_no_files_need_no_child() -> None:
    assert validate_isolated({}, now=NOW, memory_bytes=1, seconds=0).summary() == (
        "no flow files found")
