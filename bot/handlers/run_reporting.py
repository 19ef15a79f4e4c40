"""Run events → GitHub: ``flowbot/run/<flow-id>`` statuses, the run's reply
comment edited in place, and for scheduled runs an issue on failure that is
closed when the flow next succeeds.

One :class:`RunReporting` per process: its :meth:`~RunReporting.listen` is
handed to the run service, and :meth:`~RunReporting.report_to_reply` is called
right after a ``/run`` is answered, so an event that came before the report row
existed is never lost. Reports of one run are serialized by a lock the
reporting holds only while someone reports that run. Reporting failures are
logged, never raised into the run: the run's result stays in the bot's own pages.

Once a run has ended its comment shows what it printed
(:mod:`bot.handlers.log_excerpts`): on success the outputs and log tails of its
final tasks (those no other task needs), on failure the log tails of the tasks
that failed; a scheduled run's failure issue carries the same. While the run is
running its comment's edits are paced (:mod:`bot.handlers.edit_pacing`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bot.github.interfaces import RepoClient
from bot.handlers import render
from bot.handlers.command_replies import edit_reply
from bot.handlers.edit_pacing import EditPacer
from bot.handlers.log_excerpts import BODY_BUDGET, TaskExcerpt, excerpts_markdown
from bot.handlers.run_reports import RunReport, RunReports
from bot.services import RepoClients, run_page_url
from bot.settings import Settings
from runner.model.flows import flow_from_data
from runner.running.logstore import FileLogs, LogStore
from runner.state.records import RunEvent, RunRecord, Status, TaskRow, TriggerType
from runner.state.store import RunStore

log = logging.getLogger(__name__)

STATUS_CONTEXT = "flowbot/run/{flow_id}"
DESCRIPTIONS = {
    "pending": "Run {run_id} {status}",
    "success": "Run {run_id} succeeded",
    "failure": "Run {run_id} {status}{task}",
    "error": "Run {run_id} {status}: {error}",
}
ISSUE_TITLE = "Scheduled run of {flow_id} failed"
ISSUE_BODY = ("{marker}\nThe scheduled run [{run_id}]({url}) of `{flow_id}` {status}{task}."
              "\n\n{printed}\n")
ISSUE_AGAIN = "It failed again: run [{run_id}]({url}) {status}{task}.\n\n{printed}\n"
ISSUE_FIXED = "Run [{run_id}]({url}) succeeded; closing."
LOG_TAIL_BYTES = 64 * 1024  # read from the end of a task's log, before the excerpt trims it
FAILED = (Status.FAILED, Status.TIMED_OUT)


def state_of(status: Status) -> str:
    """The commit status state for a run status."""
    if not status.terminal:
        return "pending"
    if status is Status.SUCCESS:
        return "success"
    if status in (Status.FAILED, Status.TIMED_OUT):
        return "failure"
    return "error"  # cancelled or skipped: it did not get to say


def _description(run: RunRecord) -> str:
    state = state_of(run.status)
    task = f" in task {run.failed_task}" if run.failed_task else ""
    text = DESCRIPTIONS[state].format(run_id=run.id, status=run.status.value.replace("_", " "),
                                      task=task, error=run.error or "")
    return render.status_text(text)


class _RunLocks:
    """One lock per run being reported, dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # run -> (lock, users)

    @contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(run_id, (threading.Lock(), 0))
            self._locks[run_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[run_id][1] - 1
                if users:
                    self._locks[run_id] = (lock, users)
                else:
                    del self._locks[run_id]  # the run's reports are all out

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


class RunReporting:
    """Reports every run event to where the run reports (:mod:`bot.handlers.run_reports`)."""

    def __init__(self, settings: Settings, store: RunStore, clients: RepoClients,
                 reports: RunReports, logs: LogStore | None = None) -> None:
        self._settings, self._store, self._clients = settings, store, clients
        self._logs = logs if logs is not None else FileLogs(settings.data_dir)
        self.reports = reports
        self.locks = _RunLocks()
        self.pacer = EditPacer(store.clock, settings.reply_edit_seconds, self.locks.hold)

    def listen(self, event: RunEvent) -> None:
        """The run service listener: report the run, never raise into it."""
        try:
            self.report(event.run_id)
        except Exception:  # never let GitHub trouble reach the run
            log.exception("could not report run", extra={"run": event.run_id})

    def report_to_reply(self, run: RunRecord, installation_id: int | None, number: int,
                        reply_id: int) -> None:
        """Report ``run`` in reply comment ``reply_id`` on ``number``, starting now."""
        self.reports.ensure(RunReport(run.id, run.repo, installation_id, number,
                                      reply_id, run.commit, run.flow_id))
        self.reports.set_comment(run.id, reply_id)  # a replay's reply may be a new one
        self.report(run.id)

    def report(self, run_id: str) -> None:
        """Bring everything ``run_id`` reports to up to date with its current state."""
        run = self._store.get_run(run_id)
        if run is None:
            return  # not ours
        with self.locks.hold(run_id):
            if run.trigger.type is TriggerType.SCHEDULE:
                self.reports.ensure(RunReport(run.id, run.repo, None, None, None, run.commit,
                                              run.flow_id))
                if self.reports.claim_final(run.id, state_of(run.status)):
                    self._report_scheduled(run)  # once per state, even if events repeat
                return
            rep = self.reports.get(run_id)
            if rep is None:
                return  # a CLI run, or a /run whose report row is not written yet
            self._report_comment(self._store.get_run(run_id) or run, rep)

    def _url(self, run: RunRecord) -> str:
        return run_page_url(self._settings, run.id)

    def _excerpts(self, run: RunRecord, rows: list[TaskRow]) -> list[TaskExcerpt]:
        """What an ended run printed: its failed tasks' log tails, or when none
        failed the outputs and log tails of its final tasks."""
        failed = [row for row in rows if row.status in FAILED]
        if failed:
            return [TaskExcerpt(row.task_id, {}, self._log_tail(run, row), failed=True)
                    for row in failed]
        if run.status is not Status.SUCCESS:
            return []  # cancelled or skipped: nothing of its own to show
        needed = {need for task in flow_from_data(run.flow_data, run.flow_path).tasks
                  for need in task.needs}
        return [TaskExcerpt(row.task_id, row.outputs, self._log_tail(run, row))
                for row in rows
                if not row.handler and row.task_id not in needed
                and row.status is Status.SUCCESS]

    def _log_tail(self, run: RunRecord, row: TaskRow) -> str | None:
        return self._logs.text_tail(self._store, run.id, row.task_id, LOG_TAIL_BYTES)

    def _post_status(self, client: RepoClient, run: RunRecord, sha: str) -> None:
        client.create_status(sha, state_of(run.status),
                             STATUS_CONTEXT.format(flow_id=run.flow_id),
                             _description(run), self._url(run))

    def _report_comment(self, run: RunRecord, rep: RunReport) -> None:
        client = self._clients.client(rep.repo, rep.installation_id)
        rows = self._store.task_rows(run.id)
        excerpts = self._excerpts(run, rows) if run.status.terminal else []
        # a /run reply holds up to commands_per_comment runs' sections
        budget = BODY_BUDGET // max(1, self._settings.commands_per_comment)
        body = render.run_comment(run, rows, self._url(run), excerpts, budget)
        if rep.issue_number is not None:
            if rep.comment_id is None:
                self.reports.set_comment(run.id, client.create_comment(rep.issue_number, body))
            else:  # the run's section of a /run comment's one reply
                comment_id = rep.comment_id
                self.pacer.offer(
                    (comment_id, run.id), body,
                    lambda text: edit_reply(self._store.engine, client, comment_id, run.id, text),
                    final=run.status.terminal)
        if rep.sha and self.reports.claim_final(run.id, state_of(run.status)):
            self._post_status(client, run, rep.sha)

    def _report_scheduled(self, run: RunRecord) -> None:
        flow = flow_from_data(run.flow_data, run.flow_path)
        client = self._clients.client(run.repo, None)
        if flow.notify.status and run.commit:
            self._post_status(client, run, run.commit)
        if not run.status.terminal or not flow.notify.issue_on_failure:
            return  # issues follow only the final outcome, when the flow asks for them
        marker = render.FAILURE_MARKER.format(flow_id=run.flow_id)
        open_issue = client.find_open_issue(marker)
        words = {"run_id": run.id, "url": self._url(run), "flow_id": run.flow_id,
                 "status": run.status.value.replace("_", " "),
                 "task": f" in task `{run.failed_task}`" if run.failed_task else ""}
        if run.status is Status.SUCCESS:
            if open_issue is not None:
                client.close_issue(open_issue, ISSUE_FIXED.format(**words))
            return
        if state_of(run.status) != "failure":
            return  # a cancelled or skipped run is not a failure of the flow
        printed = excerpts_markdown(self._excerpts(run, self._store.task_rows(run.id)))
        if open_issue is None:
            client.open_issue(ISSUE_TITLE.format(**words),
                              ISSUE_BODY.format(marker=marker, printed=printed, **words))
        else:
            client.comment_issue(open_issue, ISSUE_AGAIN.format(printed=printed, **words))
