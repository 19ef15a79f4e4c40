"""Which failures are retried, and when (pure: no clock, no I/O)."""

import pytest
from sqlalchemy.exc import OperationalError

from bot.github.interfaces import GitHubError
from bot.intake.retry import RetryPolicy, is_transient, retry_policy
from bot.repos import RemoteUnreachable
from bot.settings import Settings
from runner.errors import ConfigError


def _schedule(policy: RetryPolicy) -> list[float]:
    """The waits between attempts until the policy gives up."""
    waits: list[float] = []
    while (wait := policy.delay(len(waits) + 1)) is not None:
        waits.append(wait)
    return waits


def test_default_backoff_doubles_to_its_cap_within_an_hour() -> None:
    waits = _schedule(RetryPolicy())
    assert waits == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]
    assert sum(waits) == 3030 <= 3600  # 11 attempts in all


def test_no_budget_or_no_wait_means_no_retry() -> None:
    assert _schedule(RetryPolicy(budget=0)) == []
    assert _schedule(RetryPolicy(first_delay=0)) == []  # not a busy loop
    assert _schedule(RetryPolicy(max_delay=0)) == []


def test_policy_from_settings() -> None:
    settings = Settings.from_env({"FLOWBOT_DELIVERY_BACKOFF_SECONDS": "1",
                                  "FLOWBOT_DELIVERY_BACKOFF_MAX_SECONDS": "4",
                                  "FLOWBOT_DELIVERY_RETRY_SECONDS": "12"})
    assert _schedule(retry_policy(settings)) == [1, 2, 4, 4]
    with pytest.raises(ConfigError, match="FLOWBOT_DELIVERY_RETRY_SECONDS"):
        retry_policy(Settings(delivery_retry_seconds=-1))


@pytest.mark.parametrize(("status", "detail", "transient"), [
    (None, "ConnectionError: refused", True),
    (500, "Server Error", True),
    (502, "Bad Gateway", True),
    (429, "Too Many Requests", True),
    (403, "You have exceeded a secondary rate limit", True),
    (403, "Resource not accessible by integration", False),
    (404, "Not Found", False),
    (422, "Validation Failed", False),
])
def test_github_failures(status: int | None, detail: str, transient: bool) -> None:
    assert is_transient(GitHubError("create status", status, detail)) is transient


def test_other_passing_failures_and_bugs() -> None:
    assert is_transient(RemoteUnreachable("o/r", "https://github.com/o/r.git", "timed out"))
    assert is_transient(TimeoutError("read timed out"))
    assert is_transient(OperationalError("UPDATE", {}, Exception("database is locked")))
    assert not is_transient(KeyError("head"))
    try:
        try:
            raise GitHubError("get pull", 503, "unavailable")
        except GitHubError as exc:
            raise RuntimeError("could not read the pull request") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)  # the cause decides
