"""runner/validation/validate_sandbox.py: validation in a forked child with a real address-space
limit (RLIMIT_AS) and a real kill on overrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from runner.validation.validate import validate_files
from runner.validation.validate_sandbox import validate_isolated

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
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


_MEMORY_CASE = """
import json, sys
from datetime import UTC, datetime
from runner.validation.validate_sandbox import validate_isolated
hostile = b"id: hostile\\ntasks: [" + b"0," * 500_000 + b"0]\\n"
good = b"id: good\\ntasks:\\n  - {id: t, image: b, commands: [x]}\\n"
files = {"flows/hostile.yml": hostile, "flows/good.yml": good}
report = validate_isolated(files, now=datetime(2026, 1, 1, tzinfo=UTC),
                           memory_bytes=int(sys.argv[1]) << 20, seconds=60)
print(json.dumps([str(d) for d in report.diagnostics]))
"""


def _in_fresh_process(memory_mb: int) -> list[str]:
    """validate_isolated called from a fresh interpreter: a long-lived process (this
    test run) has freed heap it still maps, which the child may reuse under its cap."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_CASE, str(memory_mb)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result: list[str] = json.loads(done.stdout)
    return result


def test_a_child_over_its_memory_limit_is_stopped_with_a_clear_error() -> None:
    assert _in_fresh_process(32) == [
        f"flows/{name}.yml:1:1: error: not validated: validating the flows needed more than "
        "32 MB and was stopped; make the flows smaller or fewer"
        for name in ("good", "hostile")
    ]
    # With room, the same files get their real answer.
    [roomy] = _in_fresh_process(1024)
    assert roomy.startswith("flows/hostile.yml:2:1009: error: tasks: 500001 tasks;")


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
