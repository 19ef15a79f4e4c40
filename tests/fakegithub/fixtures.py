"""Pytest fixtures of the fake GitHub; ``tests/conftest.py`` imports them.

``fake_github`` yields a running :class:`~tests.fakegithub.server.FakeGitHub`
with repository ``octo/flows`` and a token ``FAKE_TOKEN`` acting as user
``flowbot`` (admin of that repository). A test that made a request GitHub would
reject fails at teardown, listing the violations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakegithub.server import FakeGitHub

FAKE_TOKEN = "ghp_fake0000000000000000000000000000000"
FAKE_REPO = "octo/flows"
FAKE_LOGIN = "flowbot"


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    fake.add_repo(FAKE_REPO)
    fake.add_token(FAKE_TOKEN, FAKE_LOGIN)
    fake.add_collaborator(FAKE_REPO, FAKE_LOGIN, "admin")
    try:
        yield fake
    finally:
        fake.stop()
    check_violations(fake)


def check_violations(fake: FakeGitHub) -> None:
    """Fail the test if the fake received any request GitHub would reject."""
    if fake.violations:
        lines = "\n".join(f"  {v.method} {v.path} -> {v.status}: {v.message}"
                          for v in fake.violations)
        pytest.fail(f"requests GitHub would reject:\n{lines}", pytrace=False)
