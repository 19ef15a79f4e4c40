"""File inputs in the runner: validation of their declarations, staging from a
real git repository (through the run service) and from local files, the caps
and refusals, and the host path tasks get on the process backend (the Docker
mount is tested in backends/test_docker_inputs_mount.py)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest
from enginekit import Kit
from sqlalchemy.engine import Engine

from runner.backends.process_backend import ProcessBackend
from runner.clock import SystemClock
from runner.errors import InputError
from runner.model.flows import InputType, flow_from_data
from runner.running.input_files import stage_files, task_values
from runner.running.inputs import FileSource, coerce_inputs
from runner.running.service import RunService
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore
from runner.validation.validate import validate_text

CSV = b"month,revenue\n2026-11,1200\n"
FLOW = {"id": "revenue", "inputs": {"data": {"type": "file", "required": True}},
        "tasks": [{"id": "show", "image": "busybox:latest", "network": "none",
                   "commands": ['echo "at=$INPUT_DATA"', 'cat "{{ inputs.data }}"']}]}


def _problems(inputs: str) -> list[str]:
    text = f"id: f\ninputs:\n{inputs}\ntasks:\n  - id: t\n    image: busybox\n    commands: [ls]\n"
    report = validate_text("flows/f.yml", text, now=datetime(2026, 1, 1, tzinfo=UTC))
    return [str(d) for d in report.diagnostics]


def test_a_file_input_declaration_is_checked() -> None:
    assert _problems("  data: {type: file, default: data/revenue.csv}") == []
    assert _problems("  data: {type: file, default: ../secrets.csv}") == [
        'flows/f.yml:3:31: error: inputs.data.default: input "data": text "../secrets.csv" '
        "is not a relative path inside the repository (no .., not absolute); "
        "give a path like data/revenue.csv"]
    assert _problems("  data: {type: file, pattern: 'x'}") == [
        'flows/f.yml:3:31: error: inputs.data.pattern: pattern only applies to inputs of '
        'type string (this one is "file")']
    assert _problems("  data: {type: file, choices: [a]}") == [
        'flows/f.yml:3:31: error: inputs.data.choices: choices only apply to inputs of '
        'type choice (this one is "file")']


def test_coercion_takes_a_repository_path_and_refuses_one_leaving_it() -> None:
    spec_ = flow_from_data(FLOW, "flows/revenue.yml").inputs["data"]
    assert spec_.type is InputType.FILE
    assert coerce_inputs({"data": spec_}, {"data": "@reports/a.csv"}) == {
        "data": FileSource(label="@reports/a.csv", repo_path="reports/a.csv")}
    for bad in ("@../a.csv", "@/etc/passwd", "@", "@a\\..\\b"):
        with pytest.raises(InputError, match="not a relative path inside the repository"):
            coerce_inputs({"data": spec_}, {"data": bad})


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "reports").mkdir(parents=True)
    (root / "reports" / "a.csv").write_bytes(CSV)
    (root / "reports" / "big.csv").write_bytes(b"x" * 65)
    os.symlink("/etc/passwd", root / "reports" / "passwd.csv")
    os.symlink("/etc", root / "etc")
    return root


@pytest.mark.parametrize(("value", "problem"), [
    ("reports/passwd.csv", "@reports/passwd.csv: the path goes through a symbolic link"),
    ("etc/passwd", "@etc/passwd: the path goes through a symbolic link"),
    ("reports/none.csv", "@reports/none.csv: no such file in the repository"),
    ("reports", "@reports: not a file"),
    ("reports/big.csv", "@reports/big.csv: larger than 64 bytes"),
])
def test_staging_refuses_links_missing_files_and_files_over_the_cap(
    tmp_path: Path, value: str, problem: str
) -> None:
    source = FileSource(label=f"@{value}", repo_path=value)
    with pytest.raises(InputError) as caught:
        stage_files({"data": source}, _repo(tmp_path), tmp_path / "inputs", max_bytes=64)
    assert caught.value.name == "data" and problem in caught.value.problem


def test_staging_copies_read_only_and_records_size_and_checksum(tmp_path: Path) -> None:
    local = tmp_path / "mine.csv"
    local.write_bytes(b"a\n")
    staged = stage_files({"data": FileSource("@reports/a.csv", repo_path="reports/a.csv"),
                          "mine": FileSource("local file mine.csv", local=local), "n": 3},
                         _repo(tmp_path), tmp_path / "inputs")
    assert staged["n"] == 3
    assert staged["data"] == {"source": "@reports/a.csv", "size": len(CSV),
                              "sha256": hashlib.sha256(CSV).hexdigest()}
    assert (tmp_path / "inputs" / "data").read_bytes() == CSV
    assert (tmp_path / "inputs" / "data").stat().st_mode & 0o777 == 0o444
    assert task_values(staged, tmp_path / "inputs", "/inputs") == {
        "data": "/inputs/data", "mine": "/inputs/mine", "n": 3}
    assert task_values(staged, tmp_path / "inputs", None)["data"] == str(
        tmp_path / "inputs" / "data")


@pytest.mark.docker
def test_a_repository_file_of_a_git_commit_is_read_only_in_the_task(kit: Kit, tmp_path: Path
                                                                    ) -> None:
    origin = git.Repo.init(kit.source, initial_branch="main")
    (kit.source / "reports").mkdir()
    (kit.source / "reports" / "2026-11.csv").write_bytes(CSV)
    origin.index.add(["reports/2026-11.csv"])
    sha = origin.index.commit("november", author=git.Actor("a", "a@example.com")).hexsha
    (kit.source / "reports" / "2026-11.csv").write_bytes(b"changed after the commit\n")
    flow = flow_from_data(FLOW, "flows/revenue.yml")
    submitted = kit.service.submit(flow, {"data": "@reports/2026-11.csv"}, repo="o/r",
                                   commit=sha, source=kit.source,
                                   trigger=Trigger(TriggerType.MANUAL, "me"))
    final = kit.service.execute(submitted.run_id)
    assert final.status is Status.SUCCESS
    assert kit.log(final.id, "show").splitlines() == ["at=/inputs/data",
                                                      *CSV.decode().splitlines()]
    assert final.inputs["data"]["size"] == len(CSV)


def test_the_process_backend_gives_tasks_the_host_path(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    source = tmp_path / "repo"
    (source / "reports").mkdir(parents=True)
    (source / "reports" / "a.csv").write_bytes(CSV)
    service = RunService(RunStore(sqlite_engine, SystemClock()), ProcessBackend(owner="t"),
                         tmp_path / "data", {}, SystemClock(), owner="t")
    # network: none is refused on the process backend (its tasks share the host's network)
    flow = flow_from_data(FLOW, "flows/revenue.yml")
    flow = replace(flow, tasks=tuple(replace(t, network="bridge") for t in flow.tasks))
    submitted = service.submit(flow, {"data": "@reports/a.csv"}, repo="o/r", commit=None,
                               source=source, trigger=Trigger(TriggerType.MANUAL, "me"))
    final = service.execute(submitted.run_id)
    assert final.status is Status.SUCCESS
    [attempt] = service.store.attempts(final.id, "show")
    assert attempt.log_path is not None
    at, *content = Path(attempt.log_path).read_text().splitlines()
    assert at == f"at={tmp_path / 'data' / 'work' / final.id / 'inputs' / 'data'}"
    assert content == CSV.decode().splitlines()
    assert not (tmp_path / "data" / "work" / final.id).exists()  # removed with the run
