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


def app_key_pair() -> tuple[str, bytes]:
    """A new RSA key for a GitHub App: the private PEM (flowbot's
    FLOWBOT_GITHUB_PRIVATE_KEY) and the public PEM (``FakeGitHub.add_app``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def fake_server() -> FakeGitHub:
    """A started fake with ``FAKE_REPO`` and ``FAKE_TOKEN`` (its admin); stop it after."""
    fake = FakeGitHub().start()
    fake.add_repo(FAKE_REPO)
    fake.add_token(FAKE_TOKEN, FAKE_LOGIN)
    fake.add_collaborator(FAKE_REPO, FAKE_LOGIN, "admin")
    return fake


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    fake = fake_server()
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
