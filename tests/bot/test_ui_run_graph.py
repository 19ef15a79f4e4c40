"""The run page's task graph coloured by state, its timeline of attempts (waiting vs
running) and "load earlier" for a long log: the geometry pure, the page over the
real app, a real database and real log files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services import Services
from bot.web import gantt_svg
from bot.web.pages import PAGE_TAIL_BYTES
from runner.running.logstore import log_path
from runner.state.records import AttemptRow, Status, Trigger, TriggerType
from runner.validation.validate import validate_files
from tests.bot.test_ui_run_live import _events
from tests.bot.ui_kit import MINE, USER, ui_app, ui_services
from tests.clock import FakeClock
from tests.fakes import TestClient

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _row(task: str, attempt: int, status: Status, start: float | None,
         end: float | None) -> AttemptRow:
    return AttemptRow("r1", task, attempt, status, None, None, None, None,
                      None if start is None else _at(start), None if end is None else _at(end))


def test_waiting_runs_from_the_end_of_the_needs_and_a_retry_from_its_previous_attempt() -> None:
    rows = [_row("build", 1, Status.SUCCESS, 2, 10),
            _row("lint", 1, Status.SUCCESS, 1, 4),
            _row("test", 1, Status.FAILED, 12, 20),
            _row("test", 2, Status.RUNNING, 25, None),
            _row("late", 1, Status.QUEUED, None, None)]
    bars = gantt_svg.bars({"build": [], "lint": [], "test": ["build", "lint"], "late": []},
                          rows, T0)
    by = {(b.task_id, b.attempt): b for b in bars}
    assert set(by) == {("build", 1), ("lint", 1), ("test", 1), ("test", 2)}  # never started: none
    assert by["build", 1].ready == T0  # no needs: from the run's start
    assert by["test", 1].ready == _at(10)  # the later of its needs' ends
    assert by["test", 2].ready == _at(20)  # a retry: from the attempt before
    assert by["test", 2].ended is None


def test_the_chart_puts_the_run_start_left_and_now_right_with_round_ticks() -> None:
    bars = [gantt_svg.Bar("build", 1, "success", T0, _at(10), _at(30)),
            gantt_svg.Bar("test", 1, "running", _at(30), _at(40), None)]
    chart = gantt_svg.chart(["build", "test"], bars, T0, now=_at(60))
    segments = {(s.task_id, s.kind): s for s in chart.segments}
    left, plot = gantt_svg.LABEL_W, gantt_svg.PLOT_W
    build_wait, build_run = segments["build", "waiting"], segments["build", "running"]
    assert build_wait.x == left and build_wait.width == pytest.approx(plot / 6, abs=0.2)
    assert build_run.x == pytest.approx(left + plot / 6, abs=0.2)
    assert build_run.width == pytest.approx(plot / 3, abs=0.2) and build_run.status == "success"
    test_run = segments["test", "running"]  # running: up to now, the right edge
    assert test_run.x + test_run.width == pytest.approx(left + plot, abs=0.2)
    assert build_wait.y < test_run.y  # one row per task, in the order given
    assert [text for _, text in chart.ticks] == ["0s", "10s", "20s", "30s", "40s", "50s", "1m"]
    assert chart.ticks[-1][0] == pytest.approx(left + plot, abs=0.2)


def test_no_waiting_segment_when_an_attempt_started_at_once_and_names_are_escaped() -> None:
    bars = [gantt_svg.Bar("<b>", 1, "failed", T0, T0, _at(5))]
    chart = gantt_svg.chart(["<b>"], bars, T0, now=_at(5))
    assert [s.kind for s in chart.segments] == ["running"]
    svg = gantt_svg.render(chart, link=lambda task: f"#task-{task}")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and 'class="gantt-running st-failed"' in svg


def test_offset_text_names_minutes_and_hours() -> None:
    assert [gantt_svg.offset_text(s) for s in (0, 45, 120, 90, 3600, 8100)] == [
        "0s", "45s", "2m", "1m30s", "1h", "2h15m"]


CHAIN = b"""id: chain
tasks:
  - {id: build, image: "busybox:latest", commands: [echo hi]}
  - {id: test, image: "busybox:latest", commands: [echo hi], needs: [build]}
"""


@pytest.fixture
def local(sqlite_engine: Engine, tmp_path: Path) -> tuple[Services, TestClient]:
    svc = ui_services(sqlite_engine, tmp_path, None)
    return svc, TestClient(ui_app(svc), follow_redirects=False)


def _chain_run(svc: Services, build_log: bytes) -> str:
    """A run of ``chain``: build succeeded after 30 s, test running since 10 s later."""
    svc.registry.sync(MINE, "b" * 40, validate_files({"flows/chain.yml": CHAIN}).flows)
    registered = svc.registry.get(MINE, "chain")
    assert registered is not None
    clock = svc.clock
    assert isinstance(clock, FakeClock)
    run = svc.store.create_run(registered.flow, repo=MINE, commit="b" * 40,
                               trigger=Trigger(TriggerType.MANUAL, USER), inputs={})
    svc.store.set_run_status(run.id, Status.RUNNING, expect=[Status.QUEUED])
    for task in ("build", "test"):
        path = log_path(svc.settings.data_dir, run.id, task, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build_log if task == "build" else b"testing\n")
        svc.store.start_attempt(run.id, task, 1, str(path))
        if task == "build":
            svc.store.set_task_status(run.id, "build", Status.RUNNING)
            clock.advance(30)
            svc.store.finish_attempt(run.id, "build", 1, Status.SUCCESS, exit_code=0)
            svc.store.set_task_status(run.id, "build", Status.SUCCESS)
            clock.advance(10)
        else:
            svc.store.set_task_status(run.id, "test", Status.RUNNING)
    clock.advance(20)
    return run.id


def test_the_run_page_draws_the_graph_by_state_and_the_timeline(
        local: tuple[Services, TestClient]) -> None:
    svc, client = local
    run_id = _chain_run(svc, b"built\n")
    page = client.get(f"/runs/{run_id}").text
    assert 'class="dag-node st-success" data-task="build"' in page
    assert 'class="dag-node st-running" data-task="test"' in page
    assert 'href="#task-test"' in page and 'id="task-test"' in page
    assert 'data-from="build" data-to="test"' in page
    assert '<svg class="gantt"' in page
    assert 'class="gantt-running st-success" data-task="build"' in page
    assert 'class="gantt-waiting st-waiting" data-task="test"' in page  # 10 s after build
    assert 'class="gantt-running st-running" data-task="test"' in page


def test_the_live_state_event_carries_the_graph(local: tuple[Services, TestClient]) -> None:
    svc, client = local
    run_id = _chain_run(svc, b"built\n")
    svc.store.set_task_status(run_id, "test", Status.SUCCESS)
    svc.store.finish_attempt(run_id, "test", 1, Status.SUCCESS, exit_code=0)
    svc.store.set_run_status(run_id, Status.SUCCESS, expect=[Status.RUNNING])
    events = _events(client.get(f"/runs/{run_id}/live").text)
    state = next(e["data"] for e in events if e["event"] == "state")
    assert 'class="dag-node st-success" data-task="test"' in state


def test_load_earlier_shows_the_64_kib_before_what_the_page_shows(
        local: tuple[Services, TestClient]) -> None:
    svc, client = local
    lines = [f"line {n:06d}\n".encode() for n in range(20000)]  # 12 bytes each, 240 000
    run_id = _chain_run(svc, b"".join(lines))
    page = client.get(f"/runs/{run_id}").text
    assert "load earlier" in page
    start = 240000 - PAGE_TAIL_BYTES
    start += 12 - start % 12  # the page begins at a whole line
    href = f"/runs/{run_id}/logs/build/chunk?end={start}"
    assert f'href="{href}"' in page
    chunk = client.get(href)
    assert chunk.status_code == 200
    first = (start - PAGE_TAIL_BYTES) // 12 + 1  # from the next whole line
    assert f"line {first:06d}" in chunk.text and f"line {start // 12 - 1:06d}" in chunk.text
    assert f"line {start // 12:06d}" not in chunk.text
    assert f"line {first - 1:06d}\n" not in chunk.text
    assert f"chunk?end={first * 12}" in chunk.text  # and earlier again
    oldest = client.get(f"/runs/{run_id}/logs/build/chunk?end=100").text
    assert "line 000000" in oldest and "load earlier" not in oldest
    assert client.get(f"/runs/{run_id}/logs/nope/chunk?end=10").status_code == 404
