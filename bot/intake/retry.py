"""When a failed delivery is tried again: which errors pass, and the backoff.

A handler that fails because GitHub (or the git remote, or the database) did
not answer is not wrong, only early: its delivery goes back to the queue and is
retried after 10 s, 20 s, 40 s … (doubling, capped), until the waits would add
up to more than the retry budget. Then, or at once for any other error, the
delivery is failed for good with the error text, and only GitHub's "Redeliver"
brings it back. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from bot.github.interfaces import GitHubError
from bot.repos import RemoteUnreachable
from bot.settings import Settings
from runner.errors import ConfigError

RATE_LIMIT_WORDS = ("rate limit",)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff within a budget of waiting time (seconds).

    With the defaults the waits are 10, 20, 40, 80, 160, 320, 600, 600, 600, 600 s
    (3,030 s in all): 11 attempts over about 51 minutes, never more than an hour.
    """

    first_delay: float = 10.0
    max_delay: float = 600.0
    budget: float = 3600.0

    def wait(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first)."""
        exponent = min(max(attempt, 1) - 1, 60)  # no float overflow for huge counts
        return float(min(self.first_delay * 2 ** exponent, self.max_delay))

    def delay(self, attempts: int) -> float | None:
        """The wait before the next try after ``attempts`` failed ones; None once
        the waits so far plus this one would exceed :attr:`budget`, or when no
        wait is configured (0 s: retrying at once would spin, so it is off)."""
        wait = self.wait(attempts)
        if wait <= 0:
            return None  # retries switched off
        spent = sum(self.wait(n) for n in range(1, attempts))
        if spent + wait > self.budget:
            return None  # the budget is spent: fail for good
        return wait


def retry_policy(settings: Settings) -> RetryPolicy:
    """The policy ``FLOWBOT_DELIVERY_*`` settings describe; ConfigError names a bad one."""
    values = {"FLOWBOT_DELIVERY_BACKOFF_SECONDS": settings.delivery_backoff_seconds,
              "FLOWBOT_DELIVERY_BACKOFF_MAX_SECONDS": settings.delivery_backoff_max_seconds,
              "FLOWBOT_DELIVERY_RETRY_SECONDS": settings.delivery_retry_seconds}
    for key, value in values.items():
        if value < 0:
            raise ConfigError(key, f"expected 0 or more seconds, got {value}")
    return RetryPolicy(float(settings.delivery_backoff_seconds),
                       float(settings.delivery_backoff_max_seconds),
                       float(settings.delivery_retry_seconds))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transient_github(exc: GitHubError) -> bool:
    if exc.status is None or exc.status >= 500 or exc.status == 429:
        return True  # no answer, a server error, or "too many requests"
    detail = exc.detail.lower()
    return exc.status == 403 and any(word in detail for word in RATE_LIMIT_WORDS)


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` (or what caused it) says "try again later" rather than "wrong"."""
    for item in _chain(exc):
        if isinstance(item, GitHubError):
            return _transient_github(item)
        if isinstance(item, RemoteUnreachable | ConnectionError | TimeoutError
                      | OperationalError):
            return True
    return False
