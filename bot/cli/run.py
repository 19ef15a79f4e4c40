"""`flowbot run FLOW_FILE`: run a flow locally exactly as the bot would.

Validates the file, runs it through the same run service, store and backend the
bot uses, streams every task's logs prefixed by task id, shows task states as
they change, prints a summary table and exits 1 when the run fails. Ctrl-C
cancels the run (its containers are removed) and exits 130.

While it runs, the process is a short-lived replica (``runner/state/replicas.py``):
it registers, beats in a background thread and is marked stopped at the end,
its run carries its replica id and its containers the installation's label
(:func:`installation_for`), exactly like a ``flowbot serve`` replica's. So on a
PostgreSQL database shared with serving replicas, a ``flowbot run`` killed
mid-run is adopted like any dead replica (its containers watched to the end, or
the run failed truthfully), and a cancel asked on another replica reaches it.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.cli.runview import LiveView, summary_table
from bot.settings import Settings
from runner.backends import BACKENDS, make_backend
from runner.clock import SystemClock
from runner.errors import FlowbotError, InputError
from runner.model.flows import Flow, InputType
from runner.running.inputs import FileSource, coerce_inputs
from runner.running.logstore import make_log_store
from runner.running.service import RunService, installation_for
from runner.state.db import connect
from runner.state.notify import Notifier
from runner.state.records import RunRecord, Status, Trigger, TriggerType
from runner.state.replicas import ReplicaRegistry
from runner.state.store import RunStore
from runner.validation.validate import validate_paths

_BAD_INPUT = "-i {item!r}: expected key=value"
_TAKEN_OVER = ("run {run} is executed by replica {owner}, not this process (a serving "
               "replica took it: this process missed its heartbeat for longer than "
               "FLOWBOT_REPLICA_LEASE_SECONDS, or claimed it first); follow the run on its pages")

log = logging.getLogger(__name__)
DESCRIPTION = """\
Run FLOW_FILE on this machine exactly as the bot would: the file is validated,
its tasks run in Docker (or --backend process), each task's log streams here
prefixed by its task id, and a summary table ends the run. Secrets come from
FLOWBOT_SECRET_<NAME> or FLOWBOT_SECRETS_FILE. Runs, logs and the database are
kept in FLOWBOT_DATA_DIR (default .flowbot/ here). Ctrl-C cancels the run.

exit codes: 0 the run succeeded, 1 it failed (or the file is invalid),
2 usage or settings error, 130 cancelled"""


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("run", help="run a flow locally, as the bot would",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flow_file", metavar="FLOW_FILE", type=Path)
    parser.add_argument("-i", "--input", dest="inputs", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a flow input (repeatable); a file input takes a local file: "
                             "-i data=@local.csv")
    parser.add_argument("--repo", type=Path, default=None,
                        help="repository root given to tasks (default: the flows/ dir's parent)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="where tasks run (default: FLOWBOT_BACKEND or docker)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where runs, logs and the database live (default: FLOWBOT_DATA_DIR)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        for noisy in ("alembic", "runner"):  # the live view says what matters
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        inputs = _parse_inputs(args.inputs)
        flow = _load_flow(args.flow_file)
        if flow is None:
            return 1  # diagnostics already printed
        given = _local_files(flow, inputs)
        coerce_inputs(flow.inputs, given)  # refuse bad inputs before touching Docker
        settings = Settings.from_env()
        return _run(args, settings, flow, given)
    except InputError as exc:
        print(f"flowbot run: {exc}", file=sys.stderr)
        return 2
    except FlowbotError as exc:
        print(f"flowbot run: {exc}", file=sys.stderr)
        return 2


def _parse_inputs(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FlowbotError(_BAD_INPUT.format(item=item))
        values[key] = value
    return values


def _local_files(flow: Flow, inputs: dict[str, str]) -> dict[str, object]:
    """File inputs name local files (``@`` optional), read when the run is staged."""
    given: dict[str, object] = dict(inputs)
    for name, value in inputs.items():
        spec = flow.inputs.get(name)
        if spec is not None and spec.type is InputType.FILE and value:
            path = Path(value.removeprefix("@")).expanduser()
            given[name] = FileSource(label=f"local file {path.name}", local=path.resolve())
    return given


def _load_flow(path: Path) -> Flow | None:
    """The flow in ``path`` after full validation; prints diagnostics and returns None."""
    if not path.is_file():
        raise FlowbotError(f"{path}: no such file")
    report = validate_paths([path])
    if not report.ok:
        for diagnostic in report.diagnostics:
            print(str(diagnostic), file=sys.stderr)
        return None
    flows = report.flows
    if len(flows) != 1:
        raise FlowbotError(f"{path}: expected one flow, found {len(flows)}")
    return flows[0]


def _repo_root(flow_file: Path, given: Path | None) -> Path:
    if given is not None:
        return given.resolve()
    folder = flow_file.resolve().parent
    return folder.parent if folder.name == "flows" else folder


def _run(args: argparse.Namespace, settings: Settings, flow: Flow,
         inputs: dict[str, object]) -> int:
    data_dir = (args.data_dir or settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # --data-dir overrides the settings' folder, and with it the default SQLite file
    db_url = replace(settings, data_dir=data_dir).db_url
    # exclusive: on SQLite a serving flowbot on the same data dir refuses this one
    store = RunStore(connect(db_url, exclusive=True), SystemClock())
    replicas = ReplicaRegistry(store.engine,
                               heartbeat_seconds=settings.replica_heartbeat_seconds,
                               lease_seconds=settings.replica_lease_seconds)
    owner = installation_for(db_url)  # the label every replica on this database reaps by
    notifier = Notifier(store.engine)  # its queued and ended runs wake serving replicas
    view = LiveView(sys.stdout, flow)
    name = args.backend or settings.backend
    backend = make_backend(name, owner, **settings.backend_options(name))
    service = RunService(store, backend, data_dir,
                         settings.secret_values(), SystemClock(), settings.max_parallel_tasks,
                         listeners=[view.on_event], owner=owner, replica=replicas.id,
                         limits=settings.task_limits() if backend.name != "process" else None,
                         log_max_bytes=settings.log_max_bytes,
                         input_file_max_bytes=settings.input_file_max_bytes,
                         workspace_limits=settings.workspace_limits(),
                         logs=make_log_store(store.engine, data_dir),
                         notifier=notifier)
    with _as_replica(replicas):
        notifier.start()  # PostgreSQL: a cancel asked elsewhere arrives at once
        service.start(workers=0)  # no workers: only the poller of cancels asked elsewhere
        try:
            return _submit_and_execute(args, service, store, flow, inputs, view)
        finally:
            service.stop()
            notifier.stop()


@contextmanager
def _as_replica(replicas: ReplicaRegistry) -> Iterator[None]:
    """This process as a replica while the block runs: registered, beating in a
    background thread, and marked stopped at the end however it ends (a run it
    leaves running is then adopted at once by a serving replica)."""
    replicas.register()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(replicas.heartbeat_seconds):
            try:
                replicas.beat()
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("replica heartbeat failed", extra={"replica": replicas.id})

    beating = threading.Thread(target=beat, name="flowbot-run-replica", daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()  # before stop(): no late beat revives the row
        replicas.stop()


def _submit_and_execute(args: argparse.Namespace, service: RunService, store: RunStore,
                        flow: Flow, inputs: dict[str, object], view: LiveView) -> int:
    source = _repo_root(args.flow_file, args.repo)
    submission = service.submit(flow, inputs, repo=f"local:{source.name}", commit=None,
                                source=source, trigger=Trigger(TriggerType.CLI, getpass.getuser()))
    if submission.status is not Status.QUEUED:
        print(f"flowbot run: run {submission.run_id} {submission.status.value}: "
              f"{submission.reason}", file=sys.stderr)
        return 1
    print(f"run {submission.run_id}: flow {flow.id} ({flow.path})")
    record = _execute(service, submission.run_id, view)
    if not record.status.terminal:  # another replica executes it now
        print(f"flowbot run: {_TAKEN_OVER.format(run=record.id, owner=record.owner)}",
              file=sys.stderr)
        return 1
    print(summary_table(store.task_rows(record.id)))
    print(f"run {record.id} {record.status.value}" + (f": {record.error}" if record.error else ""))
    if record.status is Status.CANCELLED:
        return 130
    return 0 if record.status is Status.SUCCESS else 1


def _execute(service: RunService, run_id: str, view: LiveView) -> RunRecord:
    """Execute in a worker thread so Ctrl-C in this one can cancel the run."""
    result: list[RunRecord] = []
    done = threading.Event()  # not Thread.join: a KeyboardInterrupt can corrupt its state

    def work() -> None:
        try:
            result.append(service.execute(run_id, view.on_log))
        finally:
            done.set()

    threading.Thread(target=work, name="flowbot-run", daemon=True).start()
    while not done.is_set():
        try:
            done.wait(0.5)
        except KeyboardInterrupt:
            print("\ncancelling the run (removing its containers)...", file=sys.stderr)
            service.cancel(run_id)
    view.flush()
    if not result:
        raise FlowbotError(f"run {run_id} stopped unexpectedly; see the log above")
    return result[0]
