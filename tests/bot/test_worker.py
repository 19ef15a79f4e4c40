"""Delivery workers: dispatch through a router, record done/failed, survive restarts,
retry what failed for a passing reason."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.github.client import HttpPolicy, PyGithubClients
from bot.handlers import build_router
from bot.intake.app import create_app, sign
from bot.intake.deliveries import DeliveryStatus, DeliveryStore
from bot.intake.retry import RetryPolicy
from bot.intake.router import Event, Router
from bot.intake.worker import (
    BUSY_SECONDS,
    FLUSH_SECONDS,
    RECHECK_SECONDS,
    Workers,
    drain,
    process_batch,
    process_one,
)
from bot.repos import Mirrors
from bot.services import Services
from tests.bot.delivery_rows import delivery_count, find_delivery
from tests.bot.e2e_support import Origin
from tests.clock import FakeClock
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN
from tests.fakegithub.server import FakeGitHub as FakeGitHubServer
from tests.fakes import TestClient, make_services, pull_request_event
from tests.polling import wait_until


def _store(engine: Engine) -> DeliveryStore:
    store = DeliveryStore(engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    for number, event in enumerate(["push", "boom", "ping"]):
        payload = {"n": number}
        store.record(f"d{number}", event, json.dumps(payload).encode(), payload)
    return store


def _router(seen: list[str]) -> Router[None]:
    router: Router[None] = Router()

    @router.register("push")
    def push(event: Event, _: None) -> None:
        seen.append(event.delivery_id)

    @router.register("boom")
    def boom(event: Event, _: None) -> None:
        raise KeyError("head")

    return router


def test_drain_marks_done_and_failed(sqlite_engine: Engine) -> None:
    store = _store(sqlite_engine)
    seen: list[str] = []
    router = _router(seen)
    assert drain(store, lambda e: router.dispatch(e, None)) == 3
    assert seen == ["d0"]
    statuses = {d: find_delivery(store, d).status for d in ("d0", "d1", "d2")}  # type: ignore[union-attr]
    assert statuses == {"d0": DeliveryStatus.DONE, "d1": DeliveryStatus.FAILED,
                        "d2": DeliveryStatus.DONE}
    assert find_delivery(store, "d1").error == "KeyError: 'head'"  # type: ignore[union-attr]
    assert not process_one(store, lambda e: router.dispatch(e, None))


def test_threads_take_work_left_by_a_crash(sqlite_engine: Engine) -> None:
    store = _store(sqlite_engine)
    seen: list[str] = []
    store.claim(3)  # a previous process took them all and died
    store.requeue_claimed_by([], unclaimed=True)  # as its adopter does (bot.adoption)
    done = threading.Event()
    router = _router(seen)

    def dispatch(event: Event) -> None:
        router.dispatch(event, None)
        if delivery_count(store, DeliveryStatus.PENDING) == 0:
            done.set()

    workers = Workers(store, dispatch, count=2)
    workers.start()
    try:
        assert done.wait(30)
    finally:
        workers.stop()
    assert seen == ["d0"]
    assert delivery_count(store, DeliveryStatus.PROCESSING) == 0


class _Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quick_outcomes_are_written_together(sqlite_engine: Engine) -> None:
    store, ticks = _store(sqlite_engine), _Ticks()
    seen: list[tuple[str, DeliveryStatus]] = []

    def dispatch(event: Event) -> None:  # what the store says of d0 while each runs
        seen.append((event.delivery_id, find_delivery(store, "d0").status))  # type: ignore[union-attr]

    assert process_batch(store, dispatch, 3, monotonic=ticks) == 3
    assert [status for _, status in seen] == [DeliveryStatus.PROCESSING] * 3
    assert delivery_count(store, DeliveryStatus.DONE) == 3


def test_an_outcome_waits_at_most_the_flush_time(sqlite_engine: Engine) -> None:
    store, ticks = _store(sqlite_engine), _Ticks()
    seen: list[DeliveryStatus] = []

    def slow(event: Event) -> None:
        seen.append(find_delivery(store, "d0").status)  # type: ignore[union-attr]
        ticks.now += FLUSH_SECONDS + 1  # this handler took longer than the flush time

    assert process_batch(store, slow, 3, monotonic=ticks) == 3
    assert seen == [DeliveryStatus.PROCESSING, DeliveryStatus.DONE, DeliveryStatus.DONE]
    assert delivery_count(store, DeliveryStatus.DONE) == 3


def test_a_replica_stalled_past_its_lease_leaves_its_requeued_deliveries_alone(
    db_engine: Engine,
) -> None:
    clock, ticks = FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), _Ticks()
    stalled = DeliveryStore(db_engine, clock, replica="a")
    adopter = DeliveryStore(db_engine, clock, replica="b")
    for n in range(3):
        payload = {"n": n}
        stalled.record(f"d{n}", "push", json.dumps(payload).encode(), payload)
    seen: list[tuple[str, str]] = []

    def dispatch(event: Event) -> None:
        seen.append(("a", event.delivery_id))
        if event.delivery_id == "d0":  # "a" stalls here past its lease and is adopted
            ticks.now += RECHECK_SECONDS + 1
            assert adopter.requeue_claimed_by(["a"]) == 3  # as bot.adoption does
            assert drain(adopter, lambda e: seen.append(("b", e.delivery_id))) == 3
            raise KeyError("what the stalled handler ran into on waking")

    assert process_batch(stalled, dispatch, 3, monotonic=ticks) == 3
    # d1 and d2 are not started again by "a"; its failure of d0 does not overwrite "b"'s end
    assert seen == [("a", "d0"), ("b", "d0"), ("b", "d1"), ("b", "d2")]
    assert [find_delivery(adopter, f"d{n}").status for n in range(3)] == [  # type: ignore[union-attr]
        DeliveryStatus.DONE] * 3
    assert find_delivery(adopter, "d0").error is None  # type: ignore[union-attr]


def test_workers_make_progress_while_intake_is_busy(sqlite_engine: Engine) -> None:
    store, ticks = _store(sqlite_engine), _Ticks()
    seen: list[str] = []
    router = _router(seen)
    workers = Workers(store, lambda e: router.dispatch(e, None), count=1, monotonic=ticks)
    assert not workers.intake_busy()
    workers.notify()  # a delivery just arrived, and the clock stands still: busy throughout
    assert workers.intake_busy()
    workers.start()
    try:
        wait_until(lambda: delivery_count(store, DeliveryStatus.PENDING)
                   + delivery_count(store, DeliveryStatus.PROCESSING) == 0,
                   15, "the workers to finish the deliveries")
    finally:
        workers.stop()
    assert seen == ["d0"] and delivery_count(store, DeliveryStatus.DONE) == 2
    ticks.now += BUSY_SECONDS + 1  # no delivery for a while
    assert not workers.intake_busy()


# --- retries after a GitHub outage: the fake GitHub over HTTP, a real git mirror ---

GOOD_FLOW = """id: hello
tasks:
  - id: t
    image: busybox:latest
    commands: [echo hi]
"""


@pytest.fixture
def live(tmp_path: Path, sqlite_engine: Engine, fake_github: FakeGitHubServer) -> _Live:
    """Services over the fake GitHub (fast HTTP retries) and a real git origin,
    on a clock the test moves; no worker threads: the test drives the batches."""
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    github = PyGithubClients(fake_github.url, token=FAKE_TOKEN, policy=HttpPolicy.fast())
    services = make_services(sqlite_engine, clock, data_dir=tmp_path, github=github)
    services.repos = Mirrors(tmp_path / "data")
    origin = Origin(tmp_path / "origin")
    origin.commit({"README.md": "flows\n"}, "init")
    return _Live(services, clock, fake_github, origin, build_router())


class _Live:
    def __init__(self, services: Services, clock: FakeClock, fake: FakeGitHubServer,
                 origin: Origin, router: Router[Services]) -> None:
        self.services, self.clock, self.fake, self.origin = services, clock, fake, origin
        self.router = router

    @property
    def store(self) -> DeliveryStore:
        return self.services.deliveries

    def dispatch(self, event: Event) -> None:
        self.router.dispatch(event, self.services)

    def open_pull(self, delivery: str) -> tuple[str, int]:
        sha = self.origin.commit({"flows/hello.yml": GOOD_FLOW}, "hello", branch="feature")
        number = self.fake.add_pull(FAKE_REPO, head_sha=sha)
        payload = pull_request_event("opened", number, sha, repo=FAKE_REPO,
                                     clone_url=str(self.origin.path))
        self.store.record(delivery, "pull_request", json.dumps(payload).encode(), payload)
        return sha, number

    def validate_states(self, sha: str) -> list[str]:
        return [s["state"] for s in reversed(self.fake.statuses(FAKE_REPO, sha))
                if s["context"] == "flowbot/validate"]


def test_pr_status_is_posted_after_a_github_outage(live: _Live) -> None:
    sha, number = live.open_pull("pr-1")
    policy = RetryPolicy(first_delay=10, max_delay=600, budget=3600)
    live.fake.start_outage(r"^/repos/octo/flows/", status=500)
    for attempt, wait in enumerate([10, 20, 40], start=1):
        assert process_batch(live.store, live.dispatch, retry=policy) == 1
        delivery = find_delivery(live.store, "pr-1")
        assert delivery is not None and delivery.status is DeliveryStatus.PENDING
        assert delivery.attempts == attempt and "GitHubError" in (delivery.error or "")
        live.clock.advance(wait - 1)
        assert process_batch(live.store, live.dispatch, retry=policy) == 0  # not due yet
        live.clock.advance(1)
    assert live.validate_states(sha) == []  # nothing got through the outage
    live.fake.end_outage()
    assert process_batch(live.store, live.dispatch, retry=policy) == 1
    done = find_delivery(live.store, "pr-1")
    assert done is not None and done.status is DeliveryStatus.DONE and done.attempts == 4
    assert live.validate_states(sha) == ["pending", "success"]
    assert len(live.fake.comments(FAKE_REPO, number)) == 1  # the retries made one comment


def test_an_outage_longer_than_the_budget_fails_the_delivery(live: _Live) -> None:
    live.open_pull("pr-2")
    policy = RetryPolicy(first_delay=10, max_delay=40, budget=100)  # waits 10, 20, 40
    live.fake.start_outage(r"^/repos/octo/flows/statuses/", status=502)
    for wait in (10, 20, 40):
        assert process_batch(live.store, live.dispatch, retry=policy) == 1
        live.clock.advance(wait)
    assert process_batch(live.store, live.dispatch, retry=policy) == 1  # 10+20+40+40 > 100
    failed = find_delivery(live.store, "pr-2")
    assert failed is not None and failed.status is DeliveryStatus.FAILED
    assert failed.attempts == 4 and "GitHubError" in (failed.error or "")
    live.clock.advance(3600)
    assert process_batch(live.store, live.dispatch, retry=policy) == 0  # final


def test_github_redelivery_after_a_long_outage_posts_the_status(live: _Live) -> None:
    """The outage outlasted the retry budget; GitHub's "Redeliver" (same delivery id,
    through the real endpoint) is then processed, and the PR gets its status."""
    sha, _ = live.open_pull("pr-3")
    payload = dict(find_delivery(live.store, "pr-3").payload)  # type: ignore[union-attr]
    policy = RetryPolicy(first_delay=10, max_delay=10, budget=10)  # one retry
    live.fake.start_outage(r"^/repos/octo/flows/statuses/", status=503)
    for _ in range(2):
        assert process_batch(live.store, live.dispatch, retry=policy) == 1
        live.clock.advance(10)
    assert find_delivery(live.store, "pr-3").status is DeliveryStatus.FAILED  # type: ignore[union-attr]
    live.fake.end_outage()
    body = json.dumps(payload).encode()
    client = TestClient(create_app(live.services.settings, live.services))
    response = client.post("/webhook", content=body, headers={
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "pr-3",
        "X-Hub-Signature-256": sign("s3cret", body)})
    assert response.status_code == 202
    assert process_batch(live.store, live.dispatch, retry=policy) == 1
    assert find_delivery(live.store, "pr-3").status is DeliveryStatus.DONE  # type: ignore[union-attr]
    assert live.validate_states(sha) == ["pending", "success"]


def test_a_permanent_error_is_not_retried(sqlite_engine: Engine) -> None:
    store = _store(sqlite_engine)
    seen: list[str] = []
    router = _router(seen)
    assert drain(store, lambda e: router.dispatch(e, None), retry=RetryPolicy()) == 3
    failed = find_delivery(store, "d1")  # KeyError: a bug, not an outage
    assert failed is not None and failed.status is DeliveryStatus.FAILED and failed.attempts == 1
