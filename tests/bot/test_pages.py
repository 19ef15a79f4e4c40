"""Run pages over a real database and real log files: everything escaped, only the
runner's masked logs served, no secret anywhere."""

import asyncio
import hashlib
import html
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.intake.app import create_app
from bot.services import Services
from runner.backends.process_backend import ProcessBackend
from runner.clock import SystemClock
from runner.model.flows import flow_from_data
from runner.running.logstore import log_path
from runner.running.service import RunService
from runner.state.records import Status, Trigger, TriggerType
from runner.state.store import RunStore
from runner.validation.validate import validate_files
from tests.clock import FakeClock
from tests.fakes import FakeRuns, TestClient, make_services

FLOW = b"""id: tricky
triggers:
  - {id: hourly, type: schedule, cron: "@hourly", timezone: Europe/Paris}
tasks:
  - {id: build, image: "busybox:latest", commands: [echo hi]}
  - {id: test, image: "busybox:latest", commands: [echo hi], needs: [build]}
"""


@pytest.fixture
def services(sqlite_engine: Engine, tmp_path: Path) -> Services:
    svc = make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)),
                        data_dir=tmp_path)
    svc.registry.sync("acme/flows", "a" * 40, validate_files({"flows/t.yml": FLOW}).flows)
    return svc


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services.settings, services))


def _run(services: Services, tmp_path: Path) -> str:
    registered = services.registry.get("acme/flows", "tricky")
    assert registered is not None
    run = services.store.create_run(registered.flow, repo="acme/flows", commit="a" * 40,
                                    trigger=Trigger(TriggerType.MANUAL, "<script>x</script>"),
                                    inputs={})
    log = log_path(tmp_path, run.id, "build", 1)
    log.parent.mkdir(parents=True)
    log.write_text("compiling <b>bold</b> & done\nTOKEN=***\n")
    services.store.start_attempt(run.id, "build", 1, str(log))
    services.store.finish_attempt(run.id, "build", 1, Status.FAILED, exit_code=2)
    runs = services.runs
    assert isinstance(runs, FakeRuns)
    runs.finish(run.id, Status.FAILED, failed_task="build")
    return run.id


def test_run_page_escapes_everything(services: Services, client: TestClient,
                                     tmp_path: Path) -> None:
    run_id = _run(services, tmp_path)
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>x</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "compiling &lt;b&gt;bold&lt;/b&gt; &amp; done" in page.text
    assert f'href="/runs/{run_id}/logs/build"' in page.text
    assert 'http-equiv="refresh"' not in page.text  # over: no need to reload
    log = client.get(f"/runs/{run_id}/logs/build")
    assert log.headers["content-type"].startswith("text/plain")
    assert log.text == "compiling <b>bold</b> & done\nTOKEN=***\n"


def test_missing_runs_and_logs_are_404(services: Services, client: TestClient,
                                       tmp_path: Path) -> None:
    run_id = _run(services, tmp_path)
    assert client.get("/runs/nope").status_code == 404
    assert client.get(f"/runs/{run_id}/logs/test").status_code == 404
    assert client.get("/runs/nope/logs/build").status_code == 404


def test_flow_task_and_input_values_are_escaped(services: Services, client: TestClient) -> None:
    # ids are validated before registration; the page escapes them all the same
    flow = flow_from_data({"id": "<script>alert(1)</script>", "tasks": [
        {"id": "<img src=x onerror=alert(2)>", "image": "busybox:latest", "commands": ["true"]}]},
        path="flows/x.yml")
    run = services.store.create_run(flow, repo="acme/<i>flows</i>", commit="b" * 40,
                                    trigger=Trigger(TriggerType.MANUAL, "octocat"),
                                    inputs={"note": "<script>alert(3)</script>"})
    page = client.get(f"/runs/{run.id}").text
    assert "<script>" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "note=&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "logs/%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E" in page  # quoted, then escaped
    missing = client.get("/runs/<script>alert(4)")
    assert missing.status_code == 404 and missing.text == "no run with id <script>alert(4)"
    assert missing.headers["content-type"].startswith("text/plain")
    assert missing.headers["x-content-type-options"] == "nosniff"


def test_a_log_recorded_outside_the_runners_log_dir_is_never_served(
    services: Services, client: TestClient, tmp_path: Path
) -> None:
    run_id = _run(services, tmp_path)
    elsewhere = tmp_path / "secrets.env"
    elsewhere.write_text("TOKEN=hunter2\n")
    services.store.start_attempt(run_id, "test", 1, str(elsewhere))
    assert client.get(f"/runs/{run_id}/logs/test").status_code == 404
    assert "hunter2" not in client.get(f"/runs/{run_id}").text


SECRET = "hunter2-Sup3r/s3cret+value"
LEAKY = {"id": "leaky", "secrets": ["TOKEN"],
         "inputs": {"note": {"type": "string", "default": "plain"}},
         "tasks": [{"id": "leak", "image": "busybox:latest",
                    "env": {"TOKEN": "{{ secrets.TOKEN }}"},
                    "commands": ["echo arg={{ secrets.TOKEN }}", 'echo "env=$TOKEN"',
                                 'echo "out=$TOKEN" >> "$FLOWBOT_OUTPUT"', "exit 3"]}]}


def test_no_secret_appears_on_any_page_or_api(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A real run (process backend: no Docker needed) that prints its secret and fails."""
    clock = SystemClock()
    store = RunStore(sqlite_engine, clock)
    runs = RunService(store, ProcessBackend(owner="test-pages"), tmp_path, {"TOKEN": SECRET},
                      clock, owner="test-pages")
    services = make_services(sqlite_engine, clock, runs=runs, data_dir=tmp_path)
    source = tmp_path / "repo"
    source.mkdir()
    flow = flow_from_data(LEAKY, path="flows/leaky.yml")
    submitted = runs.submit(flow, {"note": "visible"}, repo="acme/flows", commit=None,
                            source=source, trigger=Trigger(TriggerType.MANUAL, "octocat"))
    assert runs.execute(submitted.run_id).status is Status.FAILED
    client = TestClient(create_app(services.settings, services))
    log = client.get(f"/runs/{submitted.run_id}/logs/leak").text
    assert "arg=***" in log and "env=***" in log  # the task did print it
    answers = [log, client.get(f"/runs/{submitted.run_id}").text,
               *(client.get(path).text for path in ("/api/runs", "/api/flows", "/api/schedules"))]
    assert "visible" in answers[1] and "visible" in answers[2]  # inputs are shown
    assert all(SECRET not in answer for answer in answers)


def _big_log(services: Services, tmp_path: Path, size: int) -> tuple[str, bytes]:
    run_id = _run(services, tmp_path)
    log = log_path(tmp_path, run_id, "test", 1)
    lines = b"".join(b"line %08d <tag>\n" % n for n in range(size // 20))
    log.write_bytes(lines)
    services.store.start_attempt(run_id, "test", 1, str(log))
    return run_id, lines


def test_a_run_page_shows_only_the_end_of_a_big_log(
    services: Services, client: TestClient, tmp_path: Path
) -> None:
    run_id, lines = _big_log(services, tmp_path, 20 * 1024 * 1024)
    tracemalloc.start()
    try:
        page = client.get(f"/runs/{run_id}").text
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # the log is 20 MiB
    last = lines.splitlines()[-1].decode()
    assert html.escape(last) in page and "line 00000000" not in page
    assert f"Showing the last 64 KiB of {len(lines)} bytes" in page
    assert f'<a href="/runs/{run_id}/logs/test">the whole log</a>' in page
    assert len(page) < 200 * 1024


async def _drain(app: Any, path: str) -> tuple[int, dict[str, str], int, str]:
    """GET ``path`` from the ASGI app, keeping only the size and a digest of the body
    (a test client would hold it all)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"test")],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    answer: dict[str, Any] = {"size": 0, "digest": hashlib.sha256()}

    requested = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if requested.is_set():
            await asyncio.Event().wait()  # the client stays connected
        requested.set()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["size"] += len(message.get("body", b""))
            answer["digest"].update(message.get("body", b""))

    await app(scope, receive, send)
    return answer["status"], answer["headers"], answer["size"], answer["digest"].hexdigest()


def test_the_whole_log_is_streamed_from_its_file(
    services: Services, tmp_path: Path
) -> None:
    run_id, lines = _big_log(services, tmp_path, 20 * 1024 * 1024)
    app = create_app(services.settings, services)
    # once before measuring: what the first streamed answer sets up for good (worker
    # threads, imports) is not what a download holds
    asyncio.run(_drain(app, f"/runs/{run_id}/logs/test"))
    tracemalloc.start()
    try:
        status, headers, size, digest = asyncio.run(_drain(app, f"/runs/{run_id}/logs/test"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200 and size == len(lines)
    assert digest == hashlib.sha256(lines).hexdigest()
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert peak < 4 * 1024 * 1024  # the log is 20 MiB


def test_a_cut_log_says_so_on_the_run_page(sqlite_engine: Engine, tmp_path: Path) -> None:
    clock = SystemClock()
    store = RunStore(sqlite_engine, clock)
    runs = RunService(store, ProcessBackend(owner="test-pages"), tmp_path, {}, clock,
                      owner="test-pages", log_max_bytes=4096)
    services = make_services(sqlite_engine, clock, runs=runs, data_dir=tmp_path)
    source = tmp_path / "repo"
    source.mkdir()
    flow = flow_from_data({"id": "loud", "tasks": [
        {"id": "t", "image": "busybox:latest", "commands": ["seq 1 10000"]}]}, "flows/loud.yml")
    submitted = runs.submit(flow, {}, repo="acme/flows", commit=None, source=source,
                            trigger=Trigger(TriggerType.MANUAL, "octocat"))
    assert runs.execute(submitted.run_id).status is Status.SUCCESS
    page = TestClient(create_app(services.settings, services)).get(
        f"/runs/{submitted.run_id}").text
    assert "<strong>log cut at 4 KiB (FLOWBOT_LOG_MAX_BYTES); " in page
    assert "[flowbot: log cut here at 4 KiB (FLOWBOT_LOG_MAX_BYTES)" in page


@pytest.mark.parametrize(
    ("trigger", "words"),
    [
        (Trigger(TriggerType.MANUAL, "you"), "started by you (manual run)"),
        (Trigger(TriggerType.SCHEDULE, "nightly", scheduled_at=datetime(2026, 3, 1, 2, tzinfo=UTC)),
         "started by the schedule nightly"),
        (Trigger(TriggerType.CLI, "ana"), "started by ana (flowbot run)"),
    ],
)
def test_the_page_says_who_or_what_started_the_run(
    services: Services, client: TestClient, trigger: Trigger, words: str
) -> None:
    registered = services.registry.get("acme/flows", "tricky")
    assert registered is not None
    run = services.store.create_run(registered.flow, repo="acme/flows", commit="a" * 40,
                                    trigger=trigger, inputs={})
    page = client.get(f"/runs/{run.id}").text
    who = words.removeprefix("started by ")
    assert f'<dt>started by</dt><dd class="started-by">{who}</dd>' in page
    assert f'href="https://github.com/acme/flows/commit/{"a" * 40}">{"a" * 12}</a>' in page
    assert "triggered by" not in page
