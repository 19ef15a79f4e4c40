"""The fake GitHub server itself: OpenAPI checking, auth, faults, recording."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github

from tests.fakegithub import routes
from tests.fakegithub.fixtures import FAKE_REPO, FAKE_TOKEN, check_violations
from tests.fakegithub.openapi import Checker
from tests.fakegithub.server import FakeGitHub

AUTH = {"Authorization": f"token {FAKE_TOKEN}"}
SHA = "c" * 40


@pytest.fixture
def raw() -> Iterator[tuple[FakeGitHub, httpx.Client]]:
    """A fake whose violations the test inspects itself (no teardown failure)."""
    fake = FakeGitHub().start()
    fake.add_repo(FAKE_REPO)
    fake.add_token(FAKE_TOKEN, "flowbot")
    fake.add_collaborator(FAKE_REPO, "flowbot", "write")
    with httpx.Client(base_url=fake.url, headers=AUTH) as client:
        yield fake, client
    fake.stop()


def test_unknown_endpoint_is_404_and_a_violation(raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, client = raw
    assert client.get("/repos/octo/flows/flowbot-things").status_code == 404
    assert client.delete("/repos/octo/flows/issues/1").status_code == 404  # no such method
    assert [(v.method, v.status) for v in fake.violations] == [("GET", 404), ("DELETE", 404)]


@pytest.mark.parametrize(("method", "path", "body", "needle"), [
    ("POST", f"/repos/octo/flows/statuses/{SHA}", {"state": "bogus"}, "'bogus' is not one of"),
    ("POST", f"/repos/octo/flows/statuses/{SHA}", {"context": "x"}, "'state' is a required"),
    ("POST", "/repos/octo/flows/issues/1/comments", {"body": 5}, "5 is not of type 'string'"),
    ("POST", "/repos/octo/flows/issues/1/comments", None, "body is required"),
    ("GET", "/repos/octo/flows/issues/one", None, "path parameter issue_number"),
    ("GET", "/repos/octo/flows/issues?state=weird", None, "query parameter state"),
    ("GET", "/repos/octo/flows/issues?colour=red", None, "unknown query parameter"),
    ("PATCH", "/repos/octo/flows/check-runs/1", {"conclusion": "meh"}, "'meh' is not one of"),
])
def test_requests_github_would_reject_are_422_violations(
        raw: tuple[FakeGitHub, httpx.Client], method: str, path: str,
        body: object, needle: str) -> None:
    fake, client = raw
    answer = client.request(method, path, json=body)
    assert answer.status_code == 422
    assert answer.json()["message"] == "Validation Failed"
    assert len(fake.violations) == 1 and needle in fake.violations[0].message
    with pytest.raises(pytest.fail.Exception, match="GitHub would reject"):
        check_violations(fake)


def test_bad_json_is_400(raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, client = raw
    answer = client.post(f"/repos/octo/flows/statuses/{SHA}", content=b"{nope")
    assert answer.status_code == 400 and fake.violations[0].status == 400


def test_valid_requests_pass_and_are_recorded(raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, client = raw
    answer = client.post(f"/repos/octo/flows/statuses/{SHA}",
                         json={"state": "success", "context": "flowbot/validate",
                               "description": None})
    assert answer.status_code == 201 and answer.json()["creator"]["login"] == "flowbot"
    assert fake.violations == []
    (recorded,) = fake.requests
    assert (recorded.method, recorded.status, recorded.login) == ("POST", 201, "flowbot")
    assert recorded.body == {"state": "success", "context": "flowbot/validate",
                             "description": None}


def test_missing_or_wrong_credentials_are_401(raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, client = raw
    assert httpx.get(f"{fake.url}/repos/octo/flows").status_code == 401
    bad = httpx.get(f"{fake.url}/repos/octo/flows", headers={"Authorization": "token nope"})
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    assert client.get("/repos/octo/flows").json()["full_name"] == FAKE_REPO
    assert fake.violations == []  # refused, but valid requests


def test_readers_cannot_write_and_strangers_cannot_see_private_repos(
        raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, _ = raw
    fake.add_token("reader-token", "reader")
    fake.add_collaborator(FAKE_REPO, "reader", "read")
    fake.add_repo("octo/secret", private=True)
    headers = {"Authorization": "Bearer reader-token"}
    post = httpx.post(f"{fake.url}/repos/octo/flows/statuses/{SHA}", headers=headers,
                      json={"state": "success"})
    hidden = httpx.get(f"{fake.url}/repos/octo/secret", headers=headers)
    assert (post.status_code, hidden.status_code) == (403, 404)


def test_app_endpoints_want_an_rs256_jwt_from_the_app_key(
        raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, client = raw
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.add_app(7, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    fake.add_installation(7, 99)
    now = int(time.time())

    def token(**claims: object) -> dict[str, str]:
        payload = {"iat": now - 60, "exp": now + 540, "iss": "7"} | claims
        return {"Authorization": f"Bearer {jwt.encode(payload, key, algorithm='RS256')}"}

    url = f"{fake.url}/app/installations/99/access_tokens"
    assert client.post(url).status_code == 401  # a user token is not an App JWT
    assert httpx.post(url, headers=token(exp=now - 10)).status_code == 401  # expired
    assert httpx.post(f"{fake.url}/app/installations/98/access_tokens",
                      headers=token()).status_code == 404
    issued = httpx.post(url, headers=token())
    assert issued.status_code == 201
    installation = {"Authorization": f"token {issued.json()['token']}"}
    me = httpx.post(f"{fake.url}/repos/octo/flows/statuses/{SHA}", headers=installation,
                    json={"state": "pending"})
    assert me.json()["creator"]["login"] == "flowbot[bot]"


def test_faults_hit_the_next_n_matching_requests(raw: tuple[FakeGitHub, httpx.Client]) -> None:
    fake, client = raw
    fake.fail_next(r"/repos/octo/flows$", 2, status=502)
    fake.rate_limit_next(r"/rate_limit", retry_after="30")
    codes = [client.get("/repos/octo/flows").status_code for _ in range(3)]
    limited = client.get("/rate_limit")
    assert codes == [502, 502, 200]
    assert limited.status_code == 403 and limited.headers["retry-after"] == "30"
    assert "secondary rate limit" in limited.json()["message"]


def test_lists_are_paginated_with_link_headers(fake_github: FakeGitHub) -> None:
    number = fake_github.add_issue(FAKE_REPO, "chatty")
    repo = fake_github.state.repos[FAKE_REPO]
    for i in range(130):
        fake_github.state.add_comment(repo, number, f"comment {i}", "someone")
    github = Github(base_url=fake_github.url, auth=Auth.Token(FAKE_TOKEN), per_page=100,
                    seconds_between_requests=0, seconds_between_writes=0, lazy=True)
    bodies = [c.body for c in github.get_repo(FAKE_REPO).get_issue(number).get_comments()]
    assert len(bodies) == 130 and bodies[-1] == "comment 129"
    assert len(fake_github.requests_to("GET", r".*/issues/\d+/comments")) == 2


def test_every_route_is_in_the_vendored_description() -> None:
    checker = Checker.load()
    implemented = {(m.lower(), t) for m, t in routes._ROUTES}
    described = {(op.method, op.template) for op in checker._operations}
    assert implemented == described


def test_answers_are_checked_against_githubs_response_schemas() -> None:
    checker = Checker.shared()
    match = checker.check("POST", f"/repos/octo/flows/statuses/{SHA}", {}, {"state": "success"})
    problem = checker.check_response(match.operation, 201, {"id": 1, "state": "success"})
    assert problem is not None and "required property" in problem
    assert checker.check_response(match.operation, 404, {"message": "Not Found"}) is None
