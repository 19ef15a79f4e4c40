"""Preparing a run's workspace on the real Docker engine: links in the
repository reach the task as links, and any failure while preparing ends the
run as failed with the reason (recorded, and told to the listeners)."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from enginekit import MANUAL, Kit, task

from runner.model.flows import flow_from_data
from runner.state.records import EventKind, Status

pytestmark = pytest.mark.docker

LINKS = {"data.csv": "/etc/shadow", "up": "../../../", "same": "a.txt"}


def _linked_repo(path: Path) -> str:
    repo = git.Repo.init(path)
    (path / "a.txt").write_text("first\n")
    for name, target in LINKS.items():
        (path / name).symlink_to(target)
    (path / "zz.txt").write_text("after the links\n")
    repo.index.add(["a.txt", *LINKS, "zz.txt"])
    return repo.index.commit("links").hexsha


def test_a_repository_with_links_runs_with_its_links_and_every_file(
    kit: Kit, tmp_path: Path
) -> None:
    source = tmp_path / "linked"
    commit = _linked_repo(source)
    checks = [f'test "$(readlink {name})" = "{target}"' for name, target in LINKS.items()]
    flow = flow_from_data({"id": "links", "tasks": [
        task("t", *checks, "cat same zz.txt")]}, "flows/links.yml")
    submission = kit.service.submit(flow, {}, repo="o/r", commit=commit, source=source,
                                    trigger=MANUAL)
    assert submission.status is Status.QUEUED, submission.reason
    run = kit.service.execute(submission.run_id)
    assert run.status is Status.SUCCESS, run.error
    assert kit.log(run.id, "t") == "first\nafter the links\n"


def test_any_failure_while_preparing_fails_the_run_with_its_reason(
    kit: Kit, tmp_path: Path
) -> None:
    """Not only flowbot's own errors: here the source path cannot even be listed."""
    flow = flow_from_data({"id": "bad", "tasks": [task("t", "true")]}, "flows/bad.yml")
    submission = kit.service.submit(flow, {}, repo="o/r", commit=None,
                                    source=tmp_path / "nul\0byte", trigger=MANUAL)
    assert submission.status is Status.FAILED
    assert submission.reason and "cannot prepare the run's files" in submission.reason
    assert "embedded null byte" in submission.reason
    run = kit.store.get_run(submission.run_id)
    assert run is not None and run.status is Status.FAILED and run.error == submission.reason
    assert [t.status for t in kit.store.task_rows(run.id)] == [Status.SKIPPED]
    assert (run.id, EventKind.FINISHED, Status.FAILED) in [
        (e.run_id, e.kind, e.status) for e in kit.events]
    assert not (tmp_path / "data" / "work" / run.id).exists()
