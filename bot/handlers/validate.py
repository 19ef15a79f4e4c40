"""Pull requests (opened, synchronize, reopened): validate ``flows/*.yml`` at the
head commit, post ``flowbot/validate`` and keep one sticky comment up to date.

Validation is static: nothing from a PR is executed, so fork PRs are safe.
A delivery whose head a newer push already superseded is skipped (the newer
delivery validates the head that matters), so a backlog does not validate every
intermediate commit. Retrying is safe: statuses are set again, the comment is
edited in place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.github.interfaces import Annotation, RepoClient, trim_body
from bot.handlers import render
from bot.intake.router import Event, Router
from bot.repos import FlowsTooLarge
from bot.services import Services
from runner.backends.fit import Target
from runner.errors import DuplicateFlowId
from runner.scheduling.registry import Plan, plan
from runner.validation.diagnostics import Diagnostic, Severity
from runner.validation.validate import RepoReport, validate_files
from runner.validation.validate_sandbox import ValidationStopped, validate_or_stop

log = logging.getLogger(__name__)

router: Router[Services] = Router()

CONTEXT = "flowbot/validate"
CHECK_NAME = "flowbot"
PENDING = "Validating flows/*.yml…"
READ_FAILED = "Could not read the flows at this commit: {error}"
LIMIT_FAILED = "❌ **The flows at this commit were not validated:** {error}"
DUPLICATE = "; two files define flow {flow_id}"


def _annotation(diag: Diagnostic) -> Annotation:
    level = "failure" if diag.severity is Severity.ERROR else "warning"
    return Annotation(diag.path, diag.line, diag.message, level, start_column=diag.col,
                      end_column=diag.col, title=f"flowbot: {diag.severity.value}")


def head_source(pull: dict[str, Any], base_repo: dict[str, Any]) -> tuple[str, str]:
    """The (full_name, clone_url) holding the PR head: the fork for fork PRs."""
    head_repo = (pull.get("head") or {}).get("repo") or base_repo  # null when the fork is gone
    return str(head_repo["full_name"]), str(head_repo["clone_url"])


def validate_untrusted(files: Mapping[str, bytes], services: Services) -> RepoReport:
    """Flows from outside (a PR's head, a pushed commit), validated in a child process
    with hard limits (FLOWBOT_VALIDATE_MEMORY_MB, FLOWBOT_VALIDATE_SECONDS; 0 MB: in this
    process), against what the configured backend can honour (known without reaching
    its engine) and the operator's bounds on a task's CPUs and memory where that backend
    applies them. Raises :class:`ValidationStopped` when the child was stopped."""
    settings = services.settings
    target = Target.named(settings.backend, settings.task_limits)
    if settings.validate_memory_mb <= 0:
        return validate_files(files, now=services.clock.now(), target=target)
    return validate_or_stop(files, now=services.clock.now(),
                            memory_bytes=settings.validate_memory_mb << 20,
                            seconds=settings.validate_seconds, target=target)


def _validate(files: dict[str, bytes], services: Services) -> RepoReport:
    """The PR's flows (:func:`validate_untrusted`); stopped, every file says why."""
    try:
        return validate_untrusted(files, services)
    except ValidationStopped as stopped:
        return stopped.report


def _head_flows(event: Event, services: Services, client: RepoClient, pull: dict[str, Any],
                repo: dict[str, Any], sha: str) -> dict[str, bytes]:
    """The flow files at the pull request's head; a failure to read them is also
    said on the commit (an error status) before it is raised."""
    try:
        mirror = services.mirror(*head_source(pull, repo), event.installation_id, want=sha)
        return services.repos.read_flows(mirror, sha)
    except FlowsTooLarge:
        raise  # the caller answers it: the flows were read, and are too many
    except Exception as exc:
        problem = render.status_text(READ_FAILED.format(error=exc))
        client.create_status(sha, "error", CONTEXT, problem)
        raise


def _plan_against_registry(report: RepoReport, services: Services,
                           repo: str) -> tuple[str, Plan | None]:
    """The report's summary, and what merging would change in the registry (None,
    with the reason added to the summary, when two flows share an id)."""
    summary = report.summary()
    try:
        return summary, plan(services.registry.digests(repo), report.flows)
    except DuplicateFlowId as exc:
        return summary + DUPLICATE.format(flow_id=exc.flow_id), None


def _publish(client: RepoClient, number: int, sha: str, body: str, summary: str,
             report: RepoReport, *, ok: bool) -> None:
    """The verdict on the pull request: its comment, the commit status, a check run."""
    client.upsert_comment(number, render.VALIDATE_MARKER, body)
    verdict = "success" if ok else "failure"
    client.create_status(sha, verdict, CONTEXT, render.status_text(summary))
    client.create_check_run(  # only an App may: with a token this does nothing
        CHECK_NAME, sha, title=summary, summary=trim_body(body), conclusion=verdict,
        annotations=[_annotation(d) for d in report.diagnostics])


@router.register("pull_request", "opened")
@router.register("pull_request", "synchronize")
@router.register("pull_request", "reopened")
def validate_pull_request(event: Event, services: Services) -> None:
    if not services.acted_on(event.repo):
        return  # not one of FLOWBOT_REPOS
    repo = dict(event.payload["repository"])
    pull = dict(event.payload["pull_request"])
    sha = str(pull["head"]["sha"])
    extra = {"delivery": event.delivery_id, "repo": event.repo, "pr": pull["number"]}
    newer = services.deliveries.superseded_by(event.delivery_id)
    if newer is not None:
        log.info("pull request head superseded, not validated", extra=extra | {
            "sha": sha, "newer_delivery": newer})
        return  # the newer delivery validates the PR's current head
    client = services.client(event.repo, event.installation_id)
    client.create_status(sha, "pending", CONTEXT, PENDING)
    try:
        files = _head_flows(event, services, client, pull, repo, sha)
    except FlowsTooLarge as exc:  # over a repository limit: the PR's answer, not a fault
        client.create_status(sha, "failure", CONTEXT, render.status_text(str(exc)))
        client.upsert_comment(int(pull["number"]), render.VALIDATE_MARKER,
                              f"{render.VALIDATE_MARKER}\n{LIMIT_FAILED.format(error=exc)}\n")
        log.info("pull request flows over a limit: %s", exc, extra=extra)
        return
    report = _validate(files, services)
    summary, diff = _plan_against_registry(report, services, event.repo)
    body = render.validation_comment(
        report.files, summary, diff, str(repo.get("default_branch", "main")), sha,
        services.clock.now(),
    )
    _publish(client, int(pull["number"]), sha, body, summary, report,
             ok=report.ok and diff is not None)
    log.info("pull request validated: %s", summary, extra=extra)
