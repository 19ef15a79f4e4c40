"""The running service: settings wired to real parts, and their threads.

:func:`build_runtime` opens (and migrates) the database and builds the run
store, registry, schedules, run service (the docker, swarm or process backend), the
scheduler, GitHub clients and git mirrors, and the delivery workers.
:meth:`Runtime.start` first registers this process as a replica and adopts what
dead replicas left, its own previous life included (deliveries in flight go back
to the queue, recorded fires start, runs left running are reconciled and
reported: :mod:`bot.adoption`), then starts the workers, the scheduler and the
replica thread (heartbeat, adoption of replicas that die later) and, on
PostgreSQL, the listener of the other replicas' notifications (queued runs and
freed slots, cancel requests, deliveries, registry syncs: :mod:`runner.state.notify`);
:meth:`Runtime.stop` ends them and marks the replica stopped. Without the Docker
engine everything but the run workers starts: runs queue with a note
(:mod:`bot.engine_gate`) and the engine is asked again every ``engine_poll``
seconds until reconciling succeeds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from bot.adoption import Adoption
from bot.engine_gate import EngineGate
from bot.github.interfaces import GitHubClients
from bot.handlers import build_router
from bot.handlers.run_reporting import RunReporting
from bot.handlers.run_reports import RunReports
from bot.intake.deliveries import DeliveryStore
from bot.intake.retry import retry_policy
from bot.intake.router import Event
from bot.intake.worker import Workers
from bot.repos import Mirrors
from bot.services import RepoClients, Services, run_page_url
from bot.settings import Settings
from bot.web.metrics import Metrics
from runner.backends import make_backend
from runner.backends.base import Backend
from runner.clock import Clock, clock_from_setting
from runner.errors import BackendError
from runner.running.logstore import LogStore, make_log_store
from runner.running.service import Listener, RunService, installation_for
from runner.scheduling.fire_sink import RunSink
from runner.scheduling.registry import Registry
from runner.scheduling.scheduler import Scheduler
from runner.scheduling.sql_schedule_store import SqlScheduleStore
from runner.state.db import connect
from runner.state.notify import DELIVERIES, SCHEDULES, Notifier, SharedWake
from runner.state.replicas import ReplicaRegistry
from runner.state.store import RunStore

log = logging.getLogger(__name__)

ENGINE_POLL_SECONDS = 5.0


def default_github(settings: Settings) -> GitHubClients:
    from bot.github.client import PyGithubClients

    return PyGithubClients.from_settings(settings)


@dataclass
class Runtime:
    services: Services
    runs: RunService
    scheduler: Scheduler
    workers: Workers
    gate: EngineGate | None = None
    engine_poll: float = ENGINE_POLL_SECONDS  # how often an absent engine is asked again
    adoption: Adoption | None = None  # this process as a replica (None: no replicas)
    notifier: Notifier | None = None  # hears the other replicas' wake-ups (PostgreSQL)
    _stop: threading.Event = field(default_factory=threading.Event)
    _engine_ready: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def dispatch(self, event: Event) -> None:
        """Process one delivery now (the demo and tests, without the workers)."""
        self.services.router.dispatch(event, self.services)

    def start(self) -> None:
        """Start everything; without the engine, runs wait until it answers (engine_gate)."""
        self._stop.clear()
        if self.notifier is not None:
            self.notifier.start()  # first: work noted while starting wakes the workers
        if self.adoption is not None:
            self.adoption.first_pass()  # dead replicas' deliveries and fires, before workers
        if self._reconcile():
            self._start_runs()
        else:
            self._spawn(self._await_engine, "flowbot-engine-wait")
        self.workers.start()
        self._spawn(lambda: self.scheduler.run_forever(self._stop), "flowbot-scheduler")
        if self.adoption is not None:
            adoption = self.adoption
            self._spawn(lambda: adoption.run_forever(self._stop, self._engine_ready.is_set),
                        "flowbot-replica")

    def _start_runs(self) -> None:
        self.runs.start(self.services.settings.max_parallel_tasks)
        self._engine_ready.set()

    def _reconcile(self) -> bool:
        """Reconcile runs a crash left running; False while the engine does not answer."""
        try:
            resumed = self._adopt_runs()  # runs a crash left running end truthfully
        except BackendError as exc:
            log.warning("the execution backend does not answer; runs wait for it",
                        extra={"reason": str(exc)})
            if self.gate is not None:
                self.gate.engine_away()
            return False
        if self.gate is not None:
            self.gate.engine_back()
        if resumed:
            log.info("reconciled runs left by the previous process", extra={"runs": resumed})
        return True

    def _adopt_runs(self) -> list[str]:
        if self.adoption is None:
            return self.runs.reconcile()  # no replicas: this process's own runs
        return self.adoption.adopt_runs()

    def _await_engine(self) -> None:
        while not self._stop.wait(self.engine_poll):
            if self._reconcile():
                if not self._stop.is_set():
                    self._start_runs()
                return  # the engine answers: the run workers take over

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.scheduler.wake()
        self.workers.stop()
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()
        self.runs.stop()
        self._engine_ready.clear()
        if self.adoption is not None:
            self.adoption.stop()  # after the threads: no heartbeat revives it
        if self.notifier is not None:
            self.notifier.stop()


def build_runtime(settings: Settings, *, github: GitHubClients | None = None,
                  clock: Clock | None = None, backend: Backend | None = None) -> Runtime:
    """Everything ``flowbot serve`` runs, from ``settings``."""
    clock = clock or clock_from_setting(settings.clock)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.db_url, exclusive=True)  # SQLite: this process only
    replicas = ReplicaRegistry(engine, heartbeat_seconds=settings.replica_heartbeat_seconds,
                               lease_seconds=settings.replica_lease_seconds)
    metrics = Metrics()  # this bot's own registry: /metrics
    # wake-ups across replicas (nothing on SQLite)
    notifier = Notifier(engine, connected=metrics.notify_listening)
    wake = SharedWake(notifier, SCHEDULES)  # a sync or pause here wakes every scheduler
    store = RunStore(engine, clock)
    schedules = SqlScheduleStore(engine, clock, instance_id=replicas.id, wake=wake)
    registry = Registry(engine, clock, wake=wake, schedules=schedules)
    mirrors = Mirrors(data_dir, settings.github_token)
    deliveries = DeliveryStore(engine, clock, replica=replicas.id)
    github = github or default_github(settings)
    _observe_github(github, metrics)
    clients = RepoClients(github, deliveries)
    logs = make_log_store(engine, data_dir)  # in the database on PostgreSQL: every replica
    reporting = RunReporting(settings, store, clients, RunReports(engine), logs)
    runs = _run_service(settings, store, backend, clock,
                        [reporting.listen, metrics.run_listener(store)], logs, replicas.id,
                        notifier)
    gate = EngineGate(runs, store, notify=reporting.report)
    router = build_router()
    workers = Workers(deliveries, lambda event: router.dispatch(event, services),
                      settings.workers, retry=retry_policy(settings),
                      observe=metrics.delivery)  # services: just below
    notifier.on(DELIVERIES, lambda _payload: workers.wake())  # recorded by any replica
    services = Services(
        settings=settings, clock=clock, engine=engine, deliveries=deliveries,
        registry=registry, schedules=schedules,
        store=store, clients=clients, repos=mirrors, runs=gate, reporting=reporting,
        router=router, wake_scheduler=wake, on_delivery=workers.notify, metrics=metrics,
        log_store=logs, replicas=replicas,
    )
    sink = RunSink(registry, store, runs, lambda repo, sha: mirrors.path_of(repo))
    scheduler = Scheduler(schedules, sink, clock, wake=wake, lateness=metrics.fire_late,
                          live=lambda: [replica.id for replica in replicas.live()])
    adoption = Adoption(replicas, deliveries, scheduler, runs, workers.notify,
                        observe=metrics)
    return Runtime(services, runs, scheduler, workers, gate, adoption=adoption,
                   notifier=notifier)


def _observe_github(github: GitHubClients, metrics: Metrics) -> None:
    """Count the GitHub calls of the PyGithub client (other clients, such as the
    demo's local stand-in, make none)."""
    if hasattr(github, "on_call"):
        github.on_call = metrics.github_call


def _run_service(settings: Settings, store: RunStore, backend: Backend | None, clock: Clock,
                 listeners: list[Listener], logs: LogStore, replica: str,
                 notifier: Notifier | None = None) -> RunService:
    """The run service of ``replica`` over ``backend`` (else the one ``settings``
    name), telling ``listeners``."""
    data_dir = settings.data_dir.resolve()
    owner = installation_for(settings.db_url)  # every replica on the database labels alike
    backend = backend or make_backend(settings.backend, owner,
                                      **settings.backend_options(settings.backend))
    limits = settings.task_limits() if backend.name in ("docker", "swarm") else None
    return RunService(store, backend, data_dir, settings.secret_values(), clock,
                      settings.max_parallel_tasks, listeners=listeners, owner=owner,
                      limits=limits, run_url=partial(run_page_url, settings),
                      log_max_bytes=settings.log_max_bytes,
                      input_file_max_bytes=settings.input_file_max_bytes, logs=logs,
                      workspace_limits=settings.workspace_limits(),
                      replica=replica, notifier=notifier)

