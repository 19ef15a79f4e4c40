"""``/metrics`` scraped from the real app after real deliveries, a real run (process
backend), a scheduled fire and GitHub calls to the fake server over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.github.client import HttpPolicy, PyGithubClients
from bot.web.metrics import Metrics
from tests.bot.e2e_support import Bot, started_bot
from tests.clock import FakeClock
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient, push_event

TOKEN = "metrics-t0ken"
START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
HELLO = """id: hello
triggers:
  - {id: hourly, type: schedule, cron: "0 * * * *", timezone: UTC}
tasks:
  - {id: greet, image: "busybox:latest", commands: ["echo hello"]}
  - {id: after, image: "busybox:latest", needs: [greet], commands: ["echo done"]}
"""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github, writers=["writer"],
                     backend="process", clock=FakeClock(START), api_token=TOKEN) as made:
        yield made


def test_a_delivery_and_a_run_are_counted(bot: Bot) -> None:
    sha = bot.origin.commit({"flows/hello.yml": HELLO}, "hello")
    assert bot.deliver("push", push_event(sha, repo=FAKE_REPO,
                                          clone_url=str(bot.origin.path))) == 202
    bot.settle()
    issue = bot.fake.add_issue(FAKE_REPO, "Run it")
    bot.deliver("issue_comment", bot.comment(issue, "/run hello", "writer"))
    bot.settle()
    [run] = bot.runtime.services.store.list_runs(repo=FAKE_REPO)
    assert bot.wait_run(run.id).status.value == "success"

    got = scrape(bot.client)
    flow = {"repo": FAKE_REPO, "flow": "hello"}
    assert value(got, "flowbot_runs_total", status="success", **flow) == 1.0
    # the fake clock stands still: every duration is exactly 0
    assert value(got, "flowbot_task_duration_seconds_count", **flow) == 2.0
    assert value(got, "flowbot_task_duration_seconds_sum", **flow) == 0.0
    assert value(got, "flowbot_run_queue_wait_seconds_count", **flow) == 1.0
    assert value(got, "flowbot_deliveries_total", event="push", outcome="done") == 1.0
    assert value(got, "flowbot_deliveries_total", event="issue_comment", outcome="done") == 1.0
    assert value(got, "flowbot_webhook_intake_seconds_count", status="202") == 2.0
    assert value(got, "flowbot_webhook_intake_seconds_bucket", status="202", le="+Inf") == 2.0
    assert value(got, "flowbot_github_api_calls_total", action="permission lookup",
                 outcome="ok") == 1.0
    statuses = value(got, "flowbot_github_api_calls_total", action="create status",
                     outcome="ok")
    assert statuses is not None and statuses >= 3  # sync, then the run pending and success

    # a bad signature is answered (401) and timed too; a redelivery is a duplicate (200)
    assert bot.deliver("push", {"zen": "x"}, secret="wrong") == 401
    assert value(scrape(bot.client), "flowbot_webhook_intake_seconds_count",
                 status="401") == 1.0


def test_a_scheduled_fire_reports_its_lateness(bot: Bot) -> None:
    sha = bot.origin.commit({"flows/hello.yml": HELLO}, "hello")
    bot.deliver("push", push_event(sha, repo=FAKE_REPO, clone_url=str(bot.origin.path)))
    bot.settle()
    clock = bot.runtime.services.clock
    assert isinstance(clock, FakeClock)
    slot = datetime(2026, 3, 2, 10, tzinfo=UTC)
    clock.set(slot + timedelta(seconds=42))
    bot.runtime.scheduler.tick(clock.now())  # the scheduler's thread may have taken it first

    got = scrape(bot.client)
    assert value(got, "flowbot_schedule_lateness_seconds_count") == 1.0
    assert value(got, "flowbot_schedule_lateness_seconds_sum") == 42.0
    assert value(got, "flowbot_schedule_lateness_seconds_bucket", le="30.0") == 0.0
    assert value(got, "flowbot_schedule_lateness_seconds_bucket", le="60.0") == 1.0


def test_only_this_machine_or_the_api_token_reads_metrics(bot: Bot) -> None:
    app = bot.client.app
    outside = TestClient(app, client=("203.0.113.7", 50000))
    refused = outside.get("/metrics")
    assert refused.status_code == 403 and "FLOWBOT_API_TOKEN" in refused.json()["message"]
    assert outside.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert "flowbot_runs" in outside.get(
        "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert bot.client.get("/metrics").status_code == 200  # loopback, no sign-in configured


def test_each_bot_counts_on_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.delivery("push", "done")
    assert b'flowbot_deliveries_total{event="push",outcome="done"} 1.0' in one.exposition()
    assert b"flowbot_deliveries_total{" not in two.exposition()


def test_github_calls_and_the_rate_limit_left(fake_github: FakeGitHub) -> None:
    metrics = Metrics()
    clients = PyGithubClients(fake_github.url, token=FAKE_TOKEN, policy=HttpPolicy.fast())
    clients.on_call = metrics.github_call
    fake_github.fail_next(r"/collaborators/ghost/permission$", status=404,
                          body={"message": "Not Found"},
                          headers={"X-RateLimit-Remaining": "4321", "X-RateLimit-Limit": "5000"})
    client = clients.for_repo(FAKE_REPO, None)
    assert client.permission_of("ghost") == "none"
    fake_github.fail_next(r"/issues/999/comments$", status=422, method="POST")
    with pytest.raises(Exception, match="HTTP 422"):
        client.create_comment(999, "hello")

    text = metrics.exposition().decode()
    assert 'flowbot_github_api_calls_total{action="permission lookup",outcome="ok"} 1.0' in text
    assert 'flowbot_github_api_calls_total{action="create comment",outcome="422"} 1.0' in text
    assert "flowbot_github_rate_limit_remaining 4321.0" in text

