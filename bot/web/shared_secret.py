"""A random secret every replica of one installation shares, for tokens that any
replica must accept (the forms' CSRF token without sign-in).

It lives in the data dir, which every replica shares anyway (same volume, same
path): the first replica to need it writes a new random value to a private file
and hard-links it into place, an exclusive create of a complete file, so of two
replicas racing only one value ever exists and nobody reads a half-written one.
Other sites cannot read it (it never leaves the machine), so tokens derived from
it cannot be guessed; deleting the file makes new ones (old pages' forms are
refused once: reload).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from runner.errors import ConfigError

SECRET_FILE = "web-secret"  # in the data dir
_BYTES = 32
TOO_SHORT = ("{path} holds {size} bytes, not a secret of {want} hex characters: delete it "
             "(every replica then shares a new one) or restore it from another replica")


def shared_secret(data_dir: Path) -> bytes:
    """The installation's secret, created at first use."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        _create(path)
    secret = path.read_bytes().strip()
    if len(secret) < 2 * _BYTES:  # edited or truncated by hand: refuse rather than weaken
        raise ConfigError("FLOWBOT_DATA_DIR", TOO_SHORT.format(
            path=path, size=len(secret), want=2 * _BYTES))
    return secret


def _create(path: Path) -> None:
    """Write a new secret to ``path`` unless another process already has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(_BYTES))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another replica won: use its secret
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def derived(secret: bytes, label: str) -> str:
    """A token for one use (``label``) of ``secret``, never the secret itself."""
    return hmac.new(secret, label.encode(), hashlib.sha256).hexdigest()
