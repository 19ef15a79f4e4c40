"""``GET /metrics``: what operators graph and alert on, in Prometheus' text format.

One :class:`Metrics` (its own ``CollectorRegistry``, never the process-wide
default, so two bots in one process — tests — count apart) is made with the
:class:`~bot.services.Services` and handed to each part at wiring time
(:func:`bot.runtime.build_runtime`): the run service's listeners (runs, task
durations, queue waits), the delivery workers, the webhook endpoint, the
scheduler (lateness; ``runner/`` gets a plain callback), the GitHub client, the
replica heartbeat (live replicas, adoptions, failed renewals) and the
notification listener (connected or not; a plain callback too).

Who may read it: the API's bearer token (``FLOWBOT_API_TOKEN``) always, and
without GitHub sign-in configured this machine (loopback) — the pages' rule
(:class:`~bot.web.auth.Access`). A signed-in person is refused: the series name
every repository's flows, not only those they may read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from runner.state.records import EventKind, RunEvent, RunRecord, TaskRow
from runner.state.store import RunStore

NOT_ALLOWED = ("/metrics answers the API token (Authorization: Bearer <FLOWBOT_API_TOKEN>), "
               "and this machine while GitHub sign-in is not configured")
TASK_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800)
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
INTAKE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
LATENESS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400)


class Metrics:
    """Every series flowbot exports, on one registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.runs = Counter("flowbot_runs", "Runs ended, by repository, flow and final status",
                            ["repo", "flow", "status"], registry=reg)
        self.task_seconds = Histogram(
            "flowbot_task_duration_seconds", "Time each task of an ended run ran",
            ["repo", "flow"], buckets=TASK_BUCKETS, registry=reg)
        self.queue_wait = Histogram(
            "flowbot_run_queue_wait_seconds", "Time a run waited from queued to started",
            ["repo", "flow"], buckets=WAIT_BUCKETS, registry=reg)
        self.deliveries = Counter(
            "flowbot_deliveries", "Webhook deliveries processed, by event and outcome "
            "(done, retried, failed)", ["event", "outcome"], registry=reg)
        self.intake = Histogram(
            "flowbot_webhook_intake_seconds", "Time POST /webhook took to answer, by status",
            ["status"], buckets=INTAKE_BUCKETS, registry=reg)
        self.lateness = Histogram(
            "flowbot_schedule_lateness_seconds", "How long after its slot a scheduled "
            "fire was handed to the runner", buckets=LATENESS_BUCKETS, registry=reg)
        self.github_calls = Counter(
            "flowbot_github_api_calls", "GitHub API calls, by action and outcome "
            "(ok, or the HTTP status / error of a failure)", ["action", "outcome"], registry=reg)
        self.rate_remaining = Gauge(
            "flowbot_github_rate_limit_remaining",
            "Requests left in GitHub's rate-limit window, as of the latest answer", registry=reg)
        self.live_replicas = Gauge(
            "flowbot_replicas_live", "Replicas holding a lease on the database (this one "
            "included), as of this replica's latest heartbeat", registry=reg)
        self.adoptions = Counter(
            "flowbot_replica_adoptions", "Dead replicas whose work this replica adopted",
            registry=reg)
        self.heartbeat_failures = Counter(
            "flowbot_replica_heartbeat_failures", "Heartbeats of this replica that could not "
            "renew its lease (a database error, or the lease already adopted by another)",
            registry=reg)
        self.notify_connected = Gauge(
            "flowbot_notify_connected", "1 while the listener for other replicas' wake-ups "
            "is connected to PostgreSQL, else 0 (always 0 on SQLite: nothing to hear)",
            registry=reg)

    # --- what the parts report ------------------------------------------------
    def run_ended(self, run: RunRecord, tasks: Sequence[TaskRow]) -> None:
        """Count an ended run, its queue wait and its tasks' durations."""
        labels = {"repo": run.repo, "flow": run.flow_id}
        self.runs.labels(status=str(run.status), **labels).inc()
        if run.started_at is not None:
            waited = (run.started_at - run.created_at).total_seconds()
            self.queue_wait.labels(**labels).observe(max(0.0, waited))
        for task in tasks:
            if task.duration is not None:
                self.task_seconds.labels(**labels).observe(max(0.0, task.duration))

    def run_listener(self, store: RunStore) -> Callable[[RunEvent], None]:
        """A run service listener counting each run as it ends (read from ``store``)."""
        def listen(event: RunEvent) -> None:
            if event.kind is not EventKind.FINISHED:
                return  # only ends are counted
            run = store.get_run(event.run_id)
            if run is not None:
                self.run_ended(run, store.task_rows(run.id))
        return listen

    def delivery(self, event: str, outcome: str) -> None:
        self.deliveries.labels(event=event, outcome=outcome).inc()

    def intake_took(self, seconds: float, status: int) -> None:
        self.intake.labels(status=str(status)).observe(seconds)

    def fire_late(self, seconds: float) -> None:
        self.lateness.observe(max(0.0, seconds))

    def github_call(self, action: str, outcome: str, remaining: int | None) -> None:
        self.github_calls.labels(action=action, outcome=outcome).inc()
        if remaining is not None and remaining >= 0:  # PyGithub says -1 before any answer
            self.rate_remaining.set(remaining)

    def replicas_live(self, count: int) -> None:
        self.live_replicas.set(count)

    def replicas_adopted(self, count: int) -> None:
        self.adoptions.inc(count)

    def heartbeat_failed(self) -> None:
        self.heartbeat_failures.inc()

    def notify_listening(self, connected: bool) -> None:
        self.notify_connected.set(1 if connected else 0)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def metrics_router(metrics: Metrics, may_read: Callable[[Request], bool]) -> APIRouter:
    """``GET /metrics`` of ``metrics``, for requests ``may_read`` lets through."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:
        if not may_read(request):
            return JSONResponse({"message": NOT_ALLOWED}, status_code=403)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
