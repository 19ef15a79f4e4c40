"""Task logs on PostgreSQL are read by every replica: a second app on the same
database (its own, empty data dir, running nothing) serves the run page, the
log tail and the whole log of a task another instance runs, while it runs and
complete once it has ended. Real Docker, real git, the fake GitHub over HTTP."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from bot.intake.app import create_app
from bot.runtime import build_runtime
from runner.running.dblogs import DbLogs
from runner.state.db import connect, metadata
from runner.state.records import Status
from runner.state.store import RunStore
from tests.bot.e2e_support import WAIT_SECONDS, Origin, make_bot, run_end
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient, push_event
from tests.polling import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

# 20 000 lines in 20 bursts over about 4 seconds
SLOW = """id: slow
tasks:
  - id: count
    image: busybox:latest
    network: none
    commands:
      - |
        i=0
        while [ $i -lt 20 ]; do
          seq $((i * 1000 + 1)) $((i * 1000 + 1000)); i=$((i + 1)); sleep 0.2
        done
"""
EXPECTED = "".join(f"{n}\n" for n in range(1, 20001))


def _empty(url: str) -> None:
    engine = connect(url)
    with engine.begin() as conn:  # what earlier tests of this session left
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def _live_log(viewer: TestClient, run_id: str, store: RunStore) -> tuple[str, bool]:
    """The task's log as the other replica's live stream sends it (to its end event),
    and whether some of it came while the run was still running."""
    text, while_running = [], False
    with viewer.stream("GET", f"/runs/{run_id}/live") as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                if event == "end":
                    break
            elif line.startswith("data: ") and event == "log":
                part = json.loads(line.removeprefix("data: "))
                text.append(part["text"])
                state = store.get_run(run_id)
                assert state is not None
                while_running = while_running or (bool(part["text"])
                                                  and not state.status.terminal)
    return "".join(text), while_running


def test_another_replica_serves_the_live_log_and_then_the_whole_log(
    tmp_path: Path, fake_github: FakeGitHub, postgres_url: str, busybox_image: str
) -> None:
    _empty(postgres_url)
    origin = Origin(tmp_path / "origin")
    fake_github.add_collaborator(FAKE_REPO, "writer", "write")
    running = make_bot(tmp_path, fake_github, origin, data_dir=tmp_path / "data-a",
                       database_url=postgres_url)
    assert isinstance(running.runtime.services.logs, DbLogs)
    # the other replica: same database, its own data dir, no workers started
    other_settings = replace(running.runtime.services.settings, data_dir=tmp_path / "data-b")
    other = build_runtime(other_settings)
    viewer = TestClient(create_app(other_settings, other.services))
    running.runtime.start()
    try:
        sha = origin.commit({"flows/slow.yml": SLOW}, "flows")
        running.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(origin.path)))
        running.settle()
        issue = fake_github.add_issue(FAKE_REPO, "Count")
        running.deliver("issue_comment", running.comment(issue, "/run slow", "writer"))
        running.settle()
        [run] = running.runtime.services.store.list_runs(repo=FAKE_REPO)
        store = other.services.store

        def shown_while_running() -> str | None:
            page = viewer.get(f"/runs/{run.id}").text
            state = store.get_run(run.id)
            numbers = re.findall(r"^(\d+)$", html.unescape(page), re.MULTILINE)
            assert state is not None
            if state.status.terminal:
                raise AssertionError("the run ended before the other replica showed its log")
            return page if numbers else None

        page = wait_until(shown_while_running, WAIT_SECONDS,
                          "the other replica's run page to show lines of the running task")
        assert "count" in page
        partial = viewer.get(f"/runs/{run.id}/logs/count")
        assert partial.status_code == 200
        assert partial.text and EXPECTED.startswith(partial.text)  # a prefix, in order

        streamed, live_while_running = _live_log(viewer, run.id, store)
        assert live_while_running  # bytes arrived over the stream while the task ran
        assert streamed == EXPECTED  # the live tail lost and repeated nothing

        ended = wait_until(lambda: run_end(store, run.id), WAIT_SECONDS, "the run to end")
        assert ended.status is Status.SUCCESS, ended.error
        whole = viewer.get(f"/runs/{run.id}/logs/count")
        assert whole.status_code == 200 and whole.text == EXPECTED
        assert whole.headers["content-length"] == str(len(EXPECTED))
        end_page = html.unescape(viewer.get(f"/runs/{run.id}").text)
        assert "\n20000\n" in end_page
        earlier = viewer.get(f"/runs/{run.id}/logs/count/chunk?end=6000")
        assert earlier.status_code == 200 and "\n1000\n" in html.unescape(earlier.text)
        # no replica keeps a log file: the database holds it
        assert not list((tmp_path / "data-a").glob("logs/**/*.log"))
        assert not (tmp_path / "data-b" / "logs").exists()
    finally:
        running.runtime.stop()
