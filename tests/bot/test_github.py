"""bot/github/ through PyGithub over HTTP against the fake GitHub server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.github.client import HttpPolicy, PyGithubClients, PyGithubRepoClient
from bot.github.interfaces import Annotation, GitHubError, StatusState
from runner.errors import ConfigError
from tests.clock import FakeClock
from tests.fakegithub.fixtures import FAKE_LOGIN, FAKE_REPO, FAKE_TOKEN, app_key_pair
from tests.fakegithub.server import FakeGitHub

SHA = "a" * 40
MARKER = "<!-- flowbot:validate -->"
STATUSES = r"/repos/octo/flows/statuses/\w+"


def client_for(fake: FakeGitHub, retries: int = 3) -> PyGithubRepoClient:
    policy = replace(HttpPolicy.fast(), retries=retries)
    clients = PyGithubClients(fake.url, token=FAKE_TOKEN, policy=policy)
    return clients.for_repo(FAKE_REPO, None)


@pytest.fixture
def client(fake_github: FakeGitHub) -> PyGithubRepoClient:
    return client_for(fake_github)


def test_statuses_are_posted_and_long_descriptions_trimmed(
        fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    client.create_status(SHA, StatusState.PENDING, "flowbot/validate", "checking")
    client.create_status(SHA, "failure", "flowbot/validate", "x" * 500,
                         target_url="http://flowbot.test/runs/1")
    newest, oldest = fake_github.statuses(FAKE_REPO, SHA)
    assert (oldest["state"], oldest["description"], oldest["target_url"]) == (
        "pending", "checking", None)
    assert newest["state"] == "failure" and len(newest["description"]) == 140
    assert newest["target_url"] == "http://flowbot.test/runs/1"


def test_sticky_comment_is_created_once_then_edited(
        fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    number = fake_github.add_pull(FAKE_REPO, head_sha=SHA)
    first = client.upsert_comment(number, MARKER, f"{MARKER}\n1 of 2 flows invalid")
    second = client.upsert_comment(number, MARKER, "2 flows valid")
    assert first == second
    assert fake_github.comments(FAKE_REPO, number) == [f"{MARKER}\n2 flows valid"]
    assert client.find_comment(number, MARKER) is not None
    assert len(fake_github.requests_to("PATCH", r".*/issues/comments/\d+")) == 1


def test_sticky_comment_deleted_meanwhile_is_posted_again(
        fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    number = fake_github.add_issue(FAKE_REPO, "flaky")
    first = client.upsert_comment(number, MARKER, "one")
    fake_github.fail_next(rf".*/issues/comments/{first}", status=404, method="PATCH",
                          body={"message": "Not Found"})
    assert client.upsert_comment(number, MARKER, "two") != first
    assert fake_github.comments(FAKE_REPO, number)[-1] == f"{MARKER}\ntwo"


def test_sticky_comment_ignores_a_marker_in_someone_elses_comment(
        fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    number = fake_github.add_issue(FAKE_REPO, "run flows")
    repo = fake_github.state.repos[FAKE_REPO]
    fake_github.state.add_comment(repo, number, f"copied {MARKER}", "mallory")
    client.upsert_comment(number, MARKER, "report")
    assert fake_github.comments(FAKE_REPO, number) == [f"copied {MARKER}", f"{MARKER}\nreport"]


def test_comments_and_reactions(fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    number = fake_github.add_issue(FAKE_REPO, "a question")
    comment_id = client.create_comment(number, "/run nightly")
    client.add_reaction(comment_id, "eyes")
    client.add_reaction(comment_id, "eyes")  # idempotent, as on GitHub
    client.edit_comment(comment_id, "edited")
    reactions = fake_github.state.comments[comment_id].reactions
    assert [(r["content"], r["user"]["login"]) for r in reactions] == [("eyes", FAKE_LOGIN)]
    assert fake_github.comments(FAKE_REPO, number) == ["edited"]


@pytest.mark.parametrize("role", ["admin", "maintain", "write", "triage", "read"])
def test_permission_of_each_role(fake_github: FakeGitHub, client: PyGithubRepoClient,
                                 role: str) -> None:
    fake_github.add_collaborator(FAKE_REPO, "alice", role)
    assert client.permission_of("alice") == role


def test_permission_of_outsiders(fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    assert client.permission_of("stranger") == "read"  # public repository
    assert client.permission_of("../../etc") == "none"  # never sent to GitHub
    fake_github.add_repo("octo/secret", private=True)
    fake_github.add_collaborator("octo/secret", FAKE_LOGIN, "admin")
    private = PyGithubClients(fake_github.url, token=FAKE_TOKEN, policy=HttpPolicy.fast())
    assert private.for_repo("octo/secret", None).permission_of("stranger") == "none"
    assert not fake_github.requests_to("GET", r".*/etc/permission")


def test_issue_open_find_comment_close(fake_github: FakeGitHub,
                                       client: PyGithubRepoClient) -> None:
    marker = "<!-- flowbot:failure:nightly -->"
    assert client.find_open_issue(marker) is None
    number = client.open_issue("nightly failed", f"{marker}\nrun 7 failed", ["flowbot"])
    assert client.find_open_issue(marker) == number
    client.comment_issue(number, "run 8 failed too")
    client.close_issue(number, "run 9 succeeded")
    issue = fake_github.state.repos[FAKE_REPO].issues[number]
    assert (issue.state, issue.labels) == ("closed", ["flowbot"])
    assert fake_github.comments(FAKE_REPO, number) == ["run 8 failed too", "run 9 succeeded"]
    assert client.find_open_issue(marker) is None


def test_get_pull_tells_forks_apart(fake_github: FakeGitHub,
                                    client: PyGithubRepoClient) -> None:
    own = client.get_pull(fake_github.add_pull(FAKE_REPO, head_sha=SHA, head_ref="fix"))
    fork = client.get_pull(fake_github.add_pull(FAKE_REPO, head_sha="b" * 40, fork=True))
    assert (own.head_sha, own.head_ref, own.base_ref, own.is_fork) == (SHA, "fix", "main", False)
    assert fork.is_fork and fork.head_full_name == "octocat/flows"


def test_retries_5xx_then_succeeds(fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    fake_github.fail_next(STATUSES, 2, status=502)
    client.create_status(SHA, "success", "flowbot/validate", "ok")
    assert [r.status for r in fake_github.requests_to("POST", STATUSES)] == [502, 502, 201]
    assert len(fake_github.statuses(FAKE_REPO, SHA)) == 1


@pytest.mark.parametrize("retry_after", ["0", None])
def test_retries_secondary_rate_limit(fake_github: FakeGitHub, client: PyGithubRepoClient,
                                      retry_after: str | None) -> None:
    number = fake_github.add_issue(FAKE_REPO, "busy")
    fake_github.rate_limit_next(r".*/comments", 2, retry_after=retry_after)
    client.create_comment(number, "hello")
    assert [r.status for r in fake_github.requests_to("POST", r".*/comments")] == [403, 403, 201]
    assert fake_github.comments(FAKE_REPO, number) == ["hello"]


@pytest.mark.parametrize("status", [403, 429])
def test_retry_after_is_waited_before_the_retry(fake_github: FakeGitHub, status: int) -> None:
    waits: list[float] = []
    policy = replace(HttpPolicy.fast(), sleep=waits.append)
    client = PyGithubClients(fake_github.url, token=FAKE_TOKEN,
                             policy=policy).for_repo(FAKE_REPO, None)
    number = fake_github.add_issue(FAKE_REPO, "busy")
    if status == 403:
        fake_github.rate_limit_next(r".*/comments", 1, retry_after="7")
    else:
        fake_github.fail_next(r".*/comments", 1, status=429, headers={"Retry-After": "7"},
                              body={"message": "Too Many Requests"})
    client.create_comment(number, "hello")
    assert [r.status for r in fake_github.requests_to("POST", r".*/comments")] == [status, 201]
    assert waits == [7.0]  # what GitHub asked, before the one retry
    assert fake_github.comments(FAKE_REPO, number) == ["hello"]


def test_a_long_retry_after_is_capped(fake_github: FakeGitHub) -> None:
    waits: list[float] = []
    policy = replace(HttpPolicy.fast(), sleep=waits.append, max_rate_limit_wait=30.0)
    client = PyGithubClients(fake_github.url, token=FAKE_TOKEN,
                             policy=policy).for_repo(FAKE_REPO, None)
    fake_github.rate_limit_next(STATUSES, 1, retry_after="3600")
    client.create_status(SHA, "success", "flowbot/validate", "ok")
    assert waits == [30.0] and len(fake_github.statuses(FAKE_REPO, SHA)) == 1


def test_writes_of_one_installation_share_one_paced_requester(fake_github: FakeGitHub) -> None:
    assert HttpPolicy().seconds_between_writes >= 1.0  # GitHub's advice for content writes
    clients = PyGithubClients(fake_github.url, token=FAKE_TOKEN, policy=HttpPolicy.fast())
    first, second = clients.for_repo(FAKE_REPO, None), clients.for_repo("octo/other", None)
    assert first._repo.requester is second._repo.requester  # one pace for both


def test_errors_after_retries_are_github_errors_without_the_token(
        fake_github: FakeGitHub, debug_logs: pytest.LogCaptureFixture) -> None:
    client = client_for(fake_github, retries=1)
    fake_github.fail_next(STATUSES, 5, status=503)
    with pytest.raises(GitHubError) as raised:
        client.create_status(SHA, "success", "flowbot/validate", "ok")
    with pytest.raises(GitHubError) as missing:
        client.create_comment(999, "no such issue")
    assert missing.value.status == 404 and "octo/flows" in str(missing.value)
    assert "create status" in str(raised.value)
    for text in (str(raised.value), str(missing.value), debug_logs.text):
        assert FAKE_TOKEN not in text
    assert "github.Requester" in {r.name for r in debug_logs.records}  # requests were logged


def test_a_bad_token_is_refused(fake_github: FakeGitHub) -> None:
    clients = PyGithubClients(fake_github.url, token="ghp_wrong", policy=HttpPolicy.fast())
    with pytest.raises(GitHubError) as raised:
        clients.for_repo(FAKE_REPO, None).create_status(SHA, "pending", "c", "d")
    assert raised.value.status == 401 and "ghp_wrong" not in str(raised.value)


def test_check_runs_need_an_app(fake_github: FakeGitHub, client: PyGithubRepoClient) -> None:
    assert client.create_check_run("flowbot/validate", SHA, title="t", summary="s") is None
    assert not fake_github.requests_to("POST", r".*/check-runs")


def test_no_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="FLOWBOT_GITHUB_TOKEN"):
        PyGithubClients("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="FLOWBOT_GITHUB_PRIVATE_KEY"):
        PyGithubClients("http://127.0.0.1:9", app_id="1", private_key="/no/such/key.pem")


# -- GitHub App --------------------------------------------------------------

APP_ID, INSTALLATION = 4242, 77


@pytest.fixture(scope="module")
def app_key() -> tuple[str, bytes]:
    return app_key_pair()


@pytest.fixture
def app_fake(fake_github: FakeGitHub, app_key: tuple[str, bytes]) -> FakeGitHub:
    fake_github.add_app(APP_ID, app_key[1], slug="flowbot")
    fake_github.add_installation(APP_ID, INSTALLATION)
    return fake_github


TOKENS = r"/app/installations/\d+/access_tokens"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything at DEBUG, PyGithub's own logger included (it sets itself to INFO)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")
    yield caplog


def test_app_token_is_fetched_once_and_renewed_near_expiry(
        app_fake: FakeGitHub, app_key: tuple[str, bytes],
        debug_logs: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(datetime.now(UTC))
    clients = PyGithubClients(app_fake.url, app_id=str(APP_ID), private_key=app_key[0],
                              policy=HttpPolicy.fast(), now=clock.now)
    for _ in range(3):
        clients.for_repo(FAKE_REPO, INSTALLATION).create_status(SHA, "pending", "c", "d")
    assert len(app_fake.requests_to("POST", TOKENS)) == 1
    clock.advance(56 * 60)  # within five minutes of the one-hour expiry
    clients.for_repo(FAKE_REPO, INSTALLATION).create_status(SHA, "success", "c", "d")
    assert len(app_fake.requests_to("POST", TOKENS)) == 2
    statuses = app_fake.statuses(FAKE_REPO, SHA)
    assert {s["creator"]["login"] for s in statuses} == {"flowbot[bot]"}
    assert "github.Requester" in {r.name for r in debug_logs.records}
    for token in app_fake.state.tokens:
        assert token not in debug_logs.text


def test_app_sticky_comment_and_check_run_with_many_annotations(
        app_fake: FakeGitHub, app_key: tuple[str, bytes]) -> None:
    clients = PyGithubClients(app_fake.url, app_id=str(APP_ID), private_key=app_key[0],
                              policy=HttpPolicy.fast())
    client = clients.for_repo(FAKE_REPO, INSTALLATION)
    number = app_fake.add_pull(FAKE_REPO, head_sha=SHA)
    client.upsert_comment(number, MARKER, "first")
    client.upsert_comment(number, MARKER, "second")
    assert app_fake.comments(FAKE_REPO, number) == [f"{MARKER}\nsecond"]
    notes = [Annotation(f"flows/f{i}.yml", i + 1, "bad key", start_column=3) for i in range(60)]
    run_id = client.create_check_run("flowbot/validate", SHA, title="1 of 60 invalid",
                                     summary="details", conclusion="failure", annotations=notes)
    run = app_fake.state.repos[FAKE_REPO].check_runs[run_id]
    assert run["conclusion"] == "failure" and run["output"]["annotations_count"] == 60
    assert run["annotations"][0]["start_column"] == 3


def test_app_needs_the_installation_and_a_matching_key(app_fake: FakeGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    clients = PyGithubClients(app_fake.url, app_id=str(APP_ID), private_key=pem,
                              policy=HttpPolicy.fast())
    with pytest.raises(ConfigError, match="installation"):
        clients.for_repo(FAKE_REPO, None)
    with pytest.raises(GitHubError) as raised:
        clients.for_repo(FAKE_REPO, INSTALLATION)
    assert raised.value.status == 401


def test_enterprise_base_path_works_the_same() -> None:
    fake = FakeGitHub(prefix="/api/v3").start()
    try:
        fake.add_repo(FAKE_REPO)
        fake.add_token(FAKE_TOKEN, FAKE_LOGIN)
        fake.add_collaborator(FAKE_REPO, FAKE_LOGIN, "admin")
        assert fake.url.endswith("/api/v3")
        client = PyGithubClients(fake.url, token=FAKE_TOKEN,
                                 policy=HttpPolicy.fast()).for_repo(FAKE_REPO, None)
        number = fake.add_issue(FAKE_REPO, "enterprise")
        client.upsert_comment(number, MARKER, "one")
        client.upsert_comment(number, MARKER, "two")
        assert fake.comments(FAKE_REPO, number) == [f"{MARKER}\ntwo"]
        assert fake.violations == []
    finally:
        fake.stop()
