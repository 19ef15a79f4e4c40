"""The per-user budget of runs started by hand: at most
``FLOWBOT_RUNS_PER_USER_PER_HOUR`` runs of one repository per user in the last hour
(0: no cap), whether started by a ``/run`` comment, the flow page's Run form or a
run page's Re-run. Counted from the runs table (trigger ``manual``, the actor, the
repository, ``created_at`` within the hour; index ``ix_runs_actor_repo_created``), so
every replica on one database sees the same count. Scheduled runs are not counted.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from bot.services import Services
from runner.errors import FlowbotError

WINDOW = timedelta(hours=1)
OVER_BUDGET = (
    "@{login} has started {count} runs of {repo} in the last hour "
    "(FLOWBOT_RUNS_PER_USER_PER_HOUR); try again after {at} UTC or ask an operator to "
    "raise it"
)


class OverBudget(FlowbotError):
    """``login`` started as many runs of ``repo`` in the last hour as allowed."""


def check(services: Services, login: str, repo: str) -> None:
    """Raise OverBudget when ``login`` may start no more runs of ``repo`` now."""
    limit = services.settings.runs_per_user_per_hour
    if limit <= 0:
        return  # no cap
    now = services.clock.now()
    count, nth_at = services.store.started_by(login, repo, now - WINDOW, limit)
    if count < limit or nth_at is None:
        return
    free = (nth_at + WINDOW).astimezone(UTC)  # fewer than ``limit`` remain from then on
    at = free.replace(second=0, microsecond=0)
    if at < free:
        at += timedelta(minutes=1)  # "after HH:MM" is true from that minute on
    raise OverBudget(OVER_BUDGET.format(login=login, count=count, repo=repo,
                                        at=f"{at:%H:%M}"))
