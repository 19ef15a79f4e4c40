"""Pushes to the default branch: sync the registry (and so the schedules) to the
pushed commit and say what changed in the ``flowbot/sync`` status.

Other branches and tags are not flowbot's business; a deleted branch has no
commit to sync; a force push is synced to its new head like any push.
"""

from __future__ import annotations

import logging

from bot.handlers import render
from bot.handlers.validate import validate_untrusted
from bot.intake.router import Event, Router
from bot.repos import FlowsTooLarge
from bot.services import Services
from runner.errors import DuplicateFlowId
from runner.scheduling.registry import SyncResult
from runner.validation.validate_sandbox import ValidationStopped

log = logging.getLogger(__name__)

router: Router[Services] = Router()

CONTEXT = "flowbot/sync"
PENDING = "Registering flows and schedules…"
FAILED = "Nothing registered: {error}"
ZERO_SHA = "0" * 40
INVALID_NOTE = "; {count} invalid file(s) not registered: {paths}"


def sync_commit(
    services: Services, repo: str, clone_url: str, sha: str, installation_id: int | None = None
) -> tuple[SyncResult, list[str]]:
    """Validate ``flows/*.yml`` at ``sha`` (in the capped child, against the configured
    backend and the operator's task bounds too) and register the valid flows; also the
    paths of the invalid files (their flows keep their last valid version). Raises
    :class:`ValidationStopped` (nothing registered) when the child was stopped."""
    mirror = services.mirror(repo, clone_url, installation_id, want=sha)
    # a push need not have gone through a PR: the same capped child as a PR's validation
    report = validate_untrusted(services.repos.read_flows(mirror, sha), services)
    valid = [f.flow for f in report.files if f.flow is not None and f.ok]
    invalid = {f.path: f.path for f in report.files if not f.ok or f.flow is None}
    return services.registry.sync(repo, sha, valid, invalid), sorted(invalid)


@router.register("push")
def sync_default_branch(event: Event, services: Services) -> None:
    payload = event.payload
    repo = payload["repository"]
    if not services.acted_on(event.repo):
        return  # not one of FLOWBOT_REPOS
    if payload.get("ref") != f"refs/heads/{repo.get('default_branch')}":
        return  # other branches and tags are validated on their PRs, not registered
    sha = str(payload.get("after") or "")
    if payload.get("deleted") or not sha or sha == ZERO_SHA:
        return  # the default branch was deleted: keep what is registered
    client = services.client(event.repo, event.installation_id)
    client.create_status(sha, "pending", CONTEXT, PENDING)
    try:
        result, invalid = sync_commit(
            services, event.repo, str(repo["clone_url"]), sha, event.installation_id)
    except (DuplicateFlowId, FlowsTooLarge, ValidationStopped) as exc:  # the flows, not a fault
        client.create_status(sha, "failure", CONTEXT, render.status_text(FAILED.format(error=exc)))
        return
    except Exception as exc:
        client.create_status(sha, "error", CONTEXT, render.status_text(FAILED.format(error=exc)))
        raise
    summary = result.summary()
    kept_paths = {f.path for f in services.registry.list(event.repo) if f.flow.id in result.kept}
    unregistered = [path for path in invalid if path not in kept_paths]
    if unregistered:
        summary += INVALID_NOTE.format(count=len(unregistered), paths=", ".join(unregistered))
    state = "failure" if invalid else "success"
    client.create_status(sha, state, CONTEXT, render.status_text(summary))
    log.info("synced: %s", result.summary(),
             extra={"delivery": event.delivery_id, "repo": event.repo, "commit": sha})
