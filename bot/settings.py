"""flowbot's settings: one typed object, built from ``FLOWBOT_*`` environment
variables (and an optional TOML config file named by ``FLOWBOT_CONFIG``), passed
to whatever needs it. Nothing reads the environment at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.backends.limits import TaskLimits
from runner.errors import ConfigError
from runner.running.export import ExportLimits


@dataclass(frozen=True)
class Settings:
    """Every setting, with defaults that work on one machine (see README table)."""

    data_dir: Path = Path(".flowbot")
    database_url: str = ""  # empty: SQLite file flowbot.db in data_dir
    backend: str = "docker"  # docker | process | swarm
    max_parallel_tasks: int = 4
    secrets_file: Path | None = None  # KEY=VALUE lines; FLOWBOT_SECRET_<NAME> wins
    webhook_secret: str = field(default="", repr=False)
    api_token: str = field(default="", repr=False)  # bearer token for API writes; empty: read-only
    github_api_url: str = "https://api.github.com"
    oauth_client_id: str = ""  # the GitHub OAuth App signing people in; empty: loopback only
    oauth_client_secret: str = field(default="", repr=False)
    oauth_authorize_url: str = ""  # empty: <web host of github_api_url>/login/oauth/authorize
    oauth_token_url: str = ""  # empty: <web host of github_api_url>/login/oauth/access_token
    session_secret: str = field(default="", repr=False)  # signs the session cookie
    session_max_age_seconds: int = 8 * 3600  # a sign-in lasts this long
    access_ttl_seconds: int = 300  # a user's readable repositories are checked again after this
    github_token: str = field(default="", repr=False)
    github_app_id: str = ""
    github_private_key: str = field(default="", repr=False)
    repos: tuple[str, ...] = ("*/*",)  # owner/name globs acted on
    commands_per_comment: int = 10  # commands answered per comment; the rest named as ignored
    refusal_window_seconds: int = 600  # at most one refusal per user and issue in this time
    runs_per_user_per_hour: int = 60  # runs one user may start by hand per repo and hour; 0: no cap
    reply_edit_seconds: float = 5.0  # a running run's comment is edited at most this often
    public_url: str = "http://localhost:8080"
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 2
    delivery_backoff_seconds: int = 10  # first wait before retrying a transient failure
    delivery_backoff_max_seconds: int = 600  # the doubling waits stop growing here
    delivery_retry_seconds: int = 3600  # the waits add up to at most this; then failed
    engine_reconnect_seconds: float = 120.0  # how long a lost Docker engine is waited for
    swarm_pending_seconds: float = 60.0  # a swarm task no node takes fails after this
    task_memory: str = "1g"  # a task's memory unless its flow asks (within task_max_memory)
    task_max_memory: str = "4g"
    task_cpus: float = 1.0
    task_max_cpus: float = 4.0
    task_user: str = ""  # uid:gid; empty: flowbot's own, or 65534:65534 when flowbot is root
    task_read_only_root: bool = True
    task_tmp_size: str = "256m"
    task_pids: int = 512
    task_log_max_size: str = "100m"
    log_max_bytes: int = 16 * 1024 * 1024  # kept of each attempt's log; past it cut, noted
    input_file_max_bytes: int = 10 * 1024 * 1024  # a file input (repo path, attachment, local)
    workspace_max_bytes: int = 1 << 30  # a run's copy of the repository at its commit
    workspace_max_files: int = 100_000  # files, links and folders in that copy
    workspace_seconds: float = 300.0  # measuring and writing that copy
    validate_memory_mb: int = 1024  # address space a PR/push validation child may add; 0: no child
    validate_seconds: float = 120.0  # wall time of that child before it is killed
    clock: str = ""  # rehearsals and tests: <start>@<real anchor>x<rate>; empty: real time
    replica_heartbeat_seconds: float = 2.0  # how often this replica renews its lease
    replica_lease_seconds: float = 10.0  # a replica silent this long is dead: others adopt it
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def github_web_url(self) -> str:
        """GitHub's web host for ``github_api_url``: ``https://api.github.com`` →
        ``https://github.com``; Enterprise's ``https://ghe.example/api/v3`` →
        ``https://ghe.example``."""
        parts = urlsplit(self.github_api_url)
        host = parts.netloc.removeprefix("api.") if parts.netloc.startswith("api.") \
            else parts.netloc
        return f"{parts.scheme}://{host}"

    @property
    def oauth_urls(self) -> tuple[str, str]:
        """The OAuth authorize and token URLs (set, or from the web host)."""
        web = self.github_web_url
        return (self.oauth_authorize_url or f"{web}/login/oauth/authorize",
                self.oauth_token_url or f"{web}/login/oauth/access_token")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'flowbot.db'}"

    def backend_options(self, name: str) -> dict[str, Any]:
        """Constructor options of backend ``name`` (``runner.backends.make_backend``):
        the operator's container defaults, bounds and reconnect time for docker and
        swarm, and how long a swarm task may stay pending."""
        if name == "swarm":
            return {"limits": self.task_limits(),
                    "reconnect_seconds": self.engine_reconnect_seconds,
                    "pending_seconds": self.swarm_pending_seconds}
        if name != "docker":
            return {}  # the process backend takes none
        return {"limits": self.task_limits(),
                "reconnect_seconds": self.engine_reconnect_seconds}

    def task_limits(self) -> TaskLimits:
        """The container defaults and bounds (checked; ConfigError names the variable)."""
        return TaskLimits(
            memory=self.task_memory, max_memory=self.task_max_memory, cpus=self.task_cpus,
            max_cpus=self.task_max_cpus, user=self.task_user,
            read_only_root=self.task_read_only_root, tmp_size=self.task_tmp_size,
            pids=self.task_pids, log_max_size=self.task_log_max_size,
        ).checked()

    def workspace_limits(self) -> ExportLimits:
        """The bounds of a run's copy of the repository (ConfigError names the variable)."""
        for name in ("workspace_max_bytes", "workspace_max_files", "workspace_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"FLOWBOT_{name.upper()}",
                                  f"must be more than 0, got {getattr(self, name)}")
        return ExportLimits(max_bytes=self.workspace_max_bytes,
                            max_files=self.workspace_max_files, seconds=self.workspace_seconds)

    def secret_values(self) -> dict[str, str]:
        """Secrets by name: the secrets file first, FLOWBOT_SECRET_<NAME> over it."""
        values: dict[str, str] = {}
        if self.secrets_file is not None:
            values.update(_read_secrets_file(self.secrets_file))
        prefix = "FLOWBOT_SECRET_"
        for key, value in self.environ.items():
            if key.startswith(prefix) and len(key) > len(prefix):
                values[key[len(prefix):]] = value
        return values

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        raw: dict[str, Any] = {}
        config_file = env.get("FLOWBOT_CONFIG")
        if config_file:
            raw.update(_read_config_file(Path(config_file)))
        for f in fields(cls):
            key = f"FLOWBOT_{f.name.upper()}"
            if key in env and f.name != "environ":
                raw[f.name] = env[key]
        return cls(**{name: _coerce(name, value) for name, value in raw.items()}, environ=env)


_DEFAULTS = Settings()


def _coerce(name: str, value: Any) -> Any:
    default = getattr(_DEFAULTS, name, None)
    key = f"FLOWBOT_{name.upper()}"
    if name == "secrets_file":
        return Path(value) if value else None
    if isinstance(default, Path):
        return Path(value)
    if isinstance(default, bool):
        return str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(key, f"expected a whole number, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(key, f"expected a number, got {value!r}") from None
    if isinstance(default, tuple):
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(item.strip() for item in items if item.strip())
    return str(value)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("FLOWBOT_CONFIG", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("FLOWBOT_CONFIG", f"{path} is not valid TOML: {exc}") from None
    known = {f.name for f in fields(Settings)} - {"environ"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError("FLOWBOT_CONFIG", f"{path}: unknown setting(s) {', '.join(unknown)}")
    return data


def _read_secrets_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("FLOWBOT_SECRETS_FILE", f"cannot read {path}: {exc}") from None
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue  # blank lines and comments
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigError("FLOWBOT_SECRETS_FILE", f"{path}:{number}: expected NAME=value")
        values[name.strip()] = value
    return values
