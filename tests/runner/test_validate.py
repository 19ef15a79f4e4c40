"""runner.validation.validate: the public API, cross-file checks, paths and the template repo."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.model.flows import Flow
from runner.validation.validate import (
    Diagnostic,
    RepoReport,
    Severity,
    validate_files,
    validate_paths,
    validate_text,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "repo-template"

FLOW = b"""\
id: etl
tasks:
  - id: extract
    image: busybox:latest
    commands: ["echo rows=3 >> $FLOWBOT_OUTPUT"]
  - id: load
    image: busybox:latest
    needs: [extract]
    comand: [echo]
"""


def test_diagnostic_renders_compiler_style() -> None:
    diagnostic = Diagnostic("flows/etl.yml", 12, 7, Severity.ERROR, "tasks[1]: oops")
    assert str(diagnostic) == "flows/etl.yml:12:7: error: tasks[1]: oops"


def test_unknown_key_is_positioned_and_suggests_the_right_one() -> None:
    report = validate_text("flows/etl.yml", FLOW, now=NOW)
    assert [str(d) for d in report.diagnostics] == [
        'flows/etl.yml:6:5: error: tasks[1]: give either commands (a list of shell lines) '
        "or script, not neither",
        'flows/etl.yml:9:5: error: tasks[1]: unknown key "comand" (did you mean "commands"?)',
    ]
    assert not report.ok
    assert report.flow is None


def test_valid_file_yields_its_flow_model() -> None:
    report = validate_text("flows/etl.yml", FLOW.replace(b"comand", b"commands"), now=NOW)
    assert report.ok and report.diagnostics == []
    assert isinstance(report.flow, Flow)
    assert report.flow.id == "etl"
    assert report.flow.path == "flows/etl.yml"
    assert report.flow.task("load").needs == ("extract",)


def test_warnings_pass_and_are_counted() -> None:
    text = b"""\
id: dst
triggers:
  - type: schedule
    cron: "30 2 * * *"
    timezone: Europe/Berlin
tasks:
  - {id: a, image: busybox, commands: [echo]}
"""
    report = validate_files({"flows/dst.yml": text}, now=NOW)
    assert report.ok
    assert [d.severity for d in report.warnings] == [Severity.WARNING] * 2
    assert "2026-03-29" in report.warnings[0].message
    assert "2026-10-25" in report.warnings[1].message
    assert report.summary() == "1 flow valid, 2 warnings"


def test_flow_ids_must_be_unique_across_files_naming_both() -> None:
    files = {
        "flows/a.yml": b"id: etl\ntasks: [{id: a, image: busybox, commands: [echo]}]\n",
        "flows/b.yml": b"# the same id\nid: etl\ntasks: [{id: a, image: busybox, commands: [x]}]\n",
        "flows/c.yml": b"id: other\ntasks: [{id: a, image: busybox, commands: [echo]}]\n",
    }
    report = validate_files(files, now=NOW)
    assert [str(d) for d in report.errors] == [
        'flows/a.yml:1:5: error: id: flow id "etl" is also used by flows/b.yml; '
        "flow ids must be unique",
        'flows/b.yml:2:5: error: id: flow id "etl" is also used by flows/a.yml; '
        "flow ids must be unique",
    ]
    assert [f.id for f in report.flows] == ["other"]
    assert report.summary() == "2 of 3 flows invalid"


def test_summary_wording() -> None:
    assert RepoReport([]).summary() == "no flow files found"
    one = validate_files({"a.yml": b"id: a\ntasks: [{id: t, image: b, commands: [x]}]\n"})
    assert one.summary() == "1 flow valid"


def test_validate_paths_reads_directories_and_reports_unreadable_files(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ok.yml").write_bytes(b"id: ok\ntasks: [{id: t, image: b, commands: [x]}]\n")
    (flows / "also.yaml").write_bytes(b"id: also\ntasks: [{id: t, image: b, commands: [x]}]\n")
    (flows / "notes.txt").write_text("not a flow")
    locked = flows / "locked.yml"
    locked.write_bytes(b"id: locked\n")
    locked.chmod(0)
    os.mkfifo(flows / "pipe.yml")
    report = validate_paths([flows], now=NOW)
    by_name = {Path(f.path).name: f for f in report.files}
    assert sorted(by_name) == ["also.yaml", "locked.yml", "ok.yml", "pipe.yml"]
    assert by_name["ok.yml"].ok and by_name["also.yaml"].ok
    assert [d.message for d in by_name["pipe.yml"].diagnostics] == [
        "cannot read file: not a regular file"
    ]
    if os.geteuid() != 0:  # root reads anything
        assert by_name["locked.yml"].diagnostics[0].message.startswith("cannot read file:")
    assert report.summary().endswith("flows invalid")


def test_validate_paths_does_not_read_past_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: costs no disk
    [file] = validate_paths([big]).files
    [diagnostic] = file.diagnostics
    assert (diagnostic.line, diagnostic.col) == (1, 1)
    assert diagnostic.message == (
        f"file is {50 * 1024 * 1024} bytes; flow files may be at most 1048576 bytes"
    )


def test_template_flows_validate_cleanly() -> None:
    report = validate_paths([TEMPLATE / "flows"], now=NOW)
    assert [str(d) for d in report.diagnostics] == []
    assert sorted(f.id for f in report.flows) == ["guarded-job", "pipeline", "revenue"]


def test_template_flows_carry_the_schema_line_and_their_files_exist() -> None:
    for path in sorted((TEMPLATE / "flows").glob("*.yml")):
        assert path.read_text().startswith("# yaml-language-server: $schema="), path
    assert (TEMPLATE / "process_data.py").is_file()
    assert (TEMPLATE / "data.csv").read_text().splitlines()[0].split(",")[-1] == "revenue"
    assert (TEMPLATE / "README.md").is_file()


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("  - {id: a, image: busybox, commands: [echo], needs: [b]}\n"
         "  - {id: b, image: busybox, commands: ['echo {{ tasks.a.outputs.x }}'], needs: [a]}\n",
         "dependency cycle: a -> b -> a"),
        ("  - {id: a, image: busybox, commands: ['echo {{ tasks.b.outputs.x }}']}\n"
         "  - {id: b, image: busybox, commands: [echo], needs: [a]}\n",
         'task "b" is not upstream of "a"'),
    ],
)
def test_semantic_problems_are_named(after: str, expected: str) -> None:
    report = validate_text("f.yml", "id: x\ntasks:\n" + after, now=NOW)
    assert any(expected in d.message for d in report.errors), report.diagnostics


def test_outputs_of_transitive_upstream_tasks_resolve() -> None:
    text = """\
id: chain
tasks:
  - {id: a, image: busybox, commands: [echo]}
  - {id: b, image: busybox, commands: [echo], needs: [a]}
  - {id: c, image: busybox, commands: ['echo {{ tasks.a.outputs.x }}'], needs: [b]}
"""
    assert validate_text("f.yml", text, now=NOW).diagnostics == []


POOLS = b"""\
id: train
pool: GPU
tasks:
  - id: fit
    image: busybox:latest
    pool: big-mem_
    commands: ["true"]
"""


def test_pool_names_are_checked_where_they_are_written() -> None:
    report = validate_text("flows/train.yml", POOLS, now=NOW)
    rule = ('is not a pool name: 1 to 63 lowercase letters, digits, "-", "_" or ".", '
            "starting and ending with a letter or digit, like gpu or big-mem")
    assert [str(d) for d in report.diagnostics] == [
        f'flows/train.yml:2:7: error: pool: "GPU" {rule}',
        f'flows/train.yml:6:11: error: tasks[0].pool: "big-mem_" {rule}',
    ]
    fixed = validate_text("flows/train.yml", POOLS.replace(b"GPU", b"gpu").replace(
        b"big-mem_", b"big.mem-2"), now=NOW)
    assert fixed.ok and fixed.flow is not None
    assert (fixed.flow.pool, fixed.flow.task("fit").pool) == ("gpu", "big.mem-2")
