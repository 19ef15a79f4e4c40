"""Run events → GitHub: ``flowbot/run/<flow-id>`` statuses, the run's reply
comment edited in place, and for scheduled runs an issue on failure that is
closed when the flow next succeeds.

:func:`run_listener` is handed to the run service; :func:`report` is also
called right after a ``/run`` is submitted, so an event that came before the
report row existed is never lost. Reporting failures are logged, never raised
into the run: the run's result stays in the bot's own pages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot import render
from bot.command_replies import edit_reply
from bot.github import RepoClient
from bot.pages import task_log
from bot.router import Router
from bot.run_reports import RunReport, RunReports
from bot.services import Services
from runner.flows import flow_from_data
from runner.records import RunEvent, RunRecord, Status, TriggerType

log = logging.getLogger(__name__)

router: Router[Services] = Router()  # reporting reacts to run events, not webhooks

STATUS_CONTEXT = "flowbot/run/{flow_id}"
DESCRIPTIONS = {
    "pending": "Run {run_id} {status}",
    "success": "Run {run_id} succeeded",
    "failure": "Run {run_id} {status}{task}",
    "error": "Run {run_id} {status}: {error}",
}
ISSUE_TITLE = "Scheduled run of {flow_id} failed"
ISSUE_BODY = "{marker}\nThe scheduled run [{run_id}]({url}) of `{flow_id}` {status}{task}.\n"
ISSUE_AGAIN = "It failed again: run [{run_id}]({url}) {status}{task}."
ISSUE_FIXED = "Run [{run_id}]({url}) succeeded; closing."

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(run_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(run_id, threading.Lock())


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


def _tail(services: Services, run: RunRecord) -> dict[str, str]:
    failing = [t for t in services.store.task_rows(run.id)
               if t.status in (Status.FAILED, Status.TIMED_OUT)]
    tails: dict[str, str] = {}
    for row in failing[:1]:
        text = task_log(services, run.id, row.task_id)
        if text:
            tails[row.task_id] = render.tail(text)
    return tails


def _post_status(client: RepoClient, services: Services, run: RunRecord, sha: str) -> None:
    client.create_status(sha, state_of(run.status), STATUS_CONTEXT.format(flow_id=run.flow_id),
                         _description(run), services.run_url(run.id))


def _report_comment(services: Services, run: RunRecord, rep: RunReport) -> None:
    client = services.client(rep.repo, rep.installation_id)
    body = render.run_comment(run, services.store.task_rows(run.id), services.run_url(run.id),
                              _tail(services, run) if run.status.terminal else None)
    if rep.issue_number is not None:
        if rep.comment_id is None:
            RunReports(services.engine).set_comment(
                run.id, client.create_comment(rep.issue_number, body))
        else:  # the run's section of a /run comment's one reply
            edit_reply(services.engine, client, rep.comment_id, run.id, body)
    if rep.sha and RunReports(services.engine).claim_final(run.id, state_of(run.status)):
        _post_status(client, services, run, rep.sha)


def _report_scheduled(services: Services, run: RunRecord) -> None:
    flow = flow_from_data(run.flow_data, run.flow_path)
    client = services.client(run.repo, None)
    if flow.notify.status and run.commit:
        _post_status(client, services, run, run.commit)
    if not run.status.terminal or not flow.notify.issue_on_failure:
        return  # issues follow only the final outcome, when the flow asks for them
    marker = render.FAILURE_MARKER.format(flow_id=run.flow_id)
    open_issue = client.find_open_issue(marker)
    url = services.run_url(run.id)
    words = {"run_id": run.id, "url": url, "flow_id": run.flow_id,
             "status": run.status.value.replace("_", " "),
             "task": f" in task `{run.failed_task}`" if run.failed_task else ""}
    if run.status is Status.SUCCESS:
        if open_issue is not None:
            client.close_issue(open_issue, ISSUE_FIXED.format(**words))
        return
    if state_of(run.status) != "failure":
        return  # a cancelled or skipped run is not a failure of the flow
    if open_issue is None:
        client.open_issue(ISSUE_TITLE.format(**words), ISSUE_BODY.format(marker=marker, **words))
    else:
        client.comment_issue(open_issue, ISSUE_AGAIN.format(**words))


def report(services: Services, run_id: str) -> None:
    """Bring everything ``run_id`` reports to up to date with its current state."""
    run = services.store.get_run(run_id)
    if run is None:
        return  # not ours
    with _lock(run_id):
        if run.trigger.type is TriggerType.SCHEDULE:
            reports = RunReports(services.engine)
            reports.ensure(RunReport(run.id, run.repo, None, None, None, run.commit, run.flow_id))
            if reports.claim_final(run.id, state_of(run.status)):
                _report_scheduled(services, run)  # once per state, even if events repeat
            return
        rep = RunReports(services.engine).get(run_id)
        if rep is None:
            return  # a CLI run, or a /run whose report row is not written yet
        _report_comment(services, services.store.get_run(run_id) or run, rep)


def run_listener(services: Services) -> Callable[[RunEvent], None]:
    """The run service listener that reports every run event."""

    def listen(event: RunEvent) -> None:
        try:
            report(services, event.run_id)
        except Exception:  # never let GitHub trouble reach the run
            log.exception("could not report run", extra={"run": event.run_id})

    return listen
