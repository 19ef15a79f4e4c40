"""`flowbot doctor`: check what `flowbot serve` depends on, one line per check.

Reads the same settings as ``serve`` (``FLOWBOT_*``, ``FLOWBOT_CONFIG``) and checks
the database (connects, migrations at head, SQLite vs PostgreSQL for replicas),
the Docker engine (answers, version, the offline images), the GitHub credentials
(a token's scopes, or the App and its installations), the webhook secret and the
public URL (absolute, and its ``/healthz`` answering). Each line says ``ok`` or
``problem`` with how to fix it; the exit code is 1 if any problem was found. Every
network call has a short timeout; nothing is created or migrated, and no secret
is printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.settings import Settings
from runner.errors import FlowbotError

MIN_SECRET_LENGTH = 20  # characters; GitHub suggests a long random string
NEW_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` or a problem, with what was seen or how to fix it."""

    name: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'problem':<8} {self.name}: {self.text}"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("doctor", help="check the database, Docker, GitHub credentials, "
                                           "webhook secret and public URL")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds each network check may take (default 5)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except FlowbotError as exc:
        print(Check("settings", False, str(exc)).line())
        return 1
    checks = run_checks(settings, args.timeout)
    for check in checks:
        print(check.line())
    problems = sum(not check.ok for check in checks)
    print(f"{problems} problem(s) found" if problems else "all checks passed",
          file=sys.stderr)
    return 1 if problems else 0


def run_checks(settings: Settings, timeout: float) -> list[Check]:
    """Every check, in order; a check that raises becomes a problem naming the error."""
    checks: list[tuple[str, Callable[[Settings, float], Check]]] = [
        ("database", check_database), ("docker", check_docker), ("github", check_github),
        ("webhook secret", check_webhook_secret), ("public url", check_public_url),
    ]
    found = []
    for name, check in checks:
        try:
            found.append(check(settings, timeout))
        except Exception as exc:  # a check must report, never end doctor with a traceback
            found.append(Check(name, False, f"the check failed: {type(exc).__name__}: "
                                            f"{_clean(str(exc), settings)}"))
    return found


def _clean(text: str, settings: Settings) -> str:
    """``text`` on one line with every configured secret masked."""
    for secret in (settings.github_token, settings.webhook_secret, settings.api_token,
                   settings.github_private_key, settings.oauth_client_secret,
                   settings.session_secret):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "..."


# --- database ----------------------------------------------------------------------

def check_database(settings: Settings, timeout: float) -> Check:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import SQLAlchemyError

    from runner.state import db

    url = settings.db_url
    shown = make_url(url).render_as_string(hide_password=True)
    sqlite = url.startswith("sqlite")
    if sqlite:
        path = Path(make_url(url).database or "")
        if not path.exists():
            return Check("database", True, f"SQLite {path} does not exist yet (flowbot serve "
                         "creates it); SQLite serves one process: for several replicas set "
                         "FLOWBOT_DATABASE_URL to PostgreSQL (postgresql+psycopg://...)")
        engine = create_engine(url)
    else:
        engine = create_engine(url, connect_args={"connect_timeout": max(1, int(timeout))})
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
            version = "SQLite" if sqlite else "PostgreSQL " + str(
                conn.execute(text("SHOW server_version")).scalar())
            encoding = None if sqlite else conn.execute(text("SHOW server_encoding")).scalar()
    except SQLAlchemyError as exc:
        detail = _clean(str(getattr(exc, "orig", None) or exc).splitlines()[0], settings)
        return Check("database", False, f"cannot connect to {shown}: {detail}; check "
                     "FLOWBOT_DATABASE_URL (host, port, user, password, database) and that "
                     "the server runs")
    finally:
        engine.dispose()
    if encoding is not None and encoding != "UTF8":
        return Check("database", False, f"{version} at {shown} uses encoding {encoding}; "
                     "flowbot needs UTF8: create the database WITH ENCODING 'UTF8' "
                     "(initdb -E UTF8)")
    if not current:
        state = "empty (flowbot serve creates the tables on its first start)"
    elif current == heads:
        state = "migrations at head"
    elif current - heads and not heads - current:
        return Check("database", False, f"{version} at {shown} has migrations this flowbot "
                     f"does not know ({', '.join(sorted(current - heads))}): it was migrated "
                     "by a newer flowbot; run that version")
    else:
        return Check("database", False, f"{version} at {shown} is behind: "
                     f"{', '.join(sorted(heads - current))} not applied; start flowbot serve "
                     "once (it migrates on start)")
    note = ("SQLite serves one process: for several replicas set FLOWBOT_DATABASE_URL to "
            "PostgreSQL" if sqlite else "replicas may share it")
    return Check("database", True, f"{version} at {shown}, {state}; {note}")


# --- Docker --------------------------------------------------------------------------

def check_docker(settings: Settings, timeout: float) -> Check:
    if settings.backend not in ("docker", "swarm"):
        return Check("docker", True, f"not used (FLOWBOT_BACKEND={settings.backend}: tasks "
                     "run as local processes)")
    import docker
    import docker.errors

    from runner import offline_images

    try:
        client = docker.from_env(timeout=max(1, int(timeout)))
    except docker.errors.DockerException as exc:
        return _docker_problem(str(exc))
    try:
        version = client.version()
        swarm = (client.info().get("Swarm") or {}) if settings.backend == "swarm" else {}
        present = []
        for ref in (offline_images.PYTHON, offline_images.BUSYBOX):
            try:
                client.images.get(ref)
                present.append(ref)
            except docker.errors.ImageNotFound:
                pass
    except docker.errors.DockerException as exc:
        return _docker_problem(str(exc))
    finally:
        client.close()
    missing = sorted({offline_images.PYTHON, offline_images.BUSYBOX} - set(present))
    images = ("the example images present" if not missing else
              f"{', '.join(missing)} not present (pulled by a task's pull policy, or "
              "python -m runner.offline_images builds them offline)")
    if settings.backend == "swarm" and not (swarm.get("LocalNodeState") == "active"
                                            and swarm.get("ControlAvailable")):
        return Check("docker", False, "FLOWBOT_BACKEND=swarm but this engine is not a swarm "
                     f"manager (its node is {swarm.get('LocalNodeState', 'inactive')}); run "
                     "`docker swarm init` there or point DOCKER_HOST at a manager")
    nodes = f"; swarm manager of {swarm.get('Nodes', '?')} node(s)" if swarm else ""
    return Check("docker", True, f"Docker Engine {version.get('Version', '?')} "
                 f"(API {version.get('ApiVersion', '?')}) answers{nodes}; {images}")


def _docker_problem(detail: str) -> Check:
    fix = "start the Docker engine (dockerd) or set DOCKER_HOST"
    if "Permission denied" in detail or "PermissionError" in detail:
        fix = ("give flowbot's user the socket's group (usermod -aG docker, or in a "
               "container --group-add $(stat -c %g /var/run/docker.sock))")
    detail = " ".join(detail.split())[:200]
    return Check("docker", False, f"the Docker engine does not answer ({detail}); {fix}")


# --- GitHub -----------------------------------------------------------------------------

def check_github(settings: Settings, timeout: float) -> Check:
    from github import Auth, Github, GithubException, GithubIntegration

    from bot.github.client import NO_CREDENTIALS, _read_key

    api = settings.github_api_url.rstrip("/")
    try:
        if settings.github_app_id:
            key = _read_key(settings.github_private_key)
            integration = GithubIntegration(
                base_url=api, auth=Auth.AppAuth(settings.github_app_id, key),
                timeout=max(1, int(timeout)), retry=None)
            app = integration.get_app()
            installations = [str(i.id) for i in integration.get_installations()]
            if not installations:
                return Check("github", False, f"GitHub App {app.slug} (id "
                             f"{settings.github_app_id}) has no installations: install it on "
                             "the repositories flowbot serves (the App's page, Install App)")
            return Check("github", True, f"GitHub App {app.slug} at {api}, installed "
                         f"{len(installations)} time(s) (installation "
                         f"{', '.join(installations[:5])})")
        if not settings.github_token:
            return Check("github", False, f"no credentials: {NO_CREDENTIALS}")
        github = Github(base_url=api, auth=Auth.Token(settings.github_token),
                        timeout=max(1, int(timeout)), retry=None)
        login = github.get_user().login  # GET /user
        scopes = github.oauth_scopes
    except FlowbotError as exc:
        return Check("github", False, str(exc))
    except GithubException as exc:
        what = "FLOWBOT_GITHUB_APP_ID / FLOWBOT_GITHUB_PRIVATE_KEY" if settings.github_app_id \
            else "FLOWBOT_GITHUB_TOKEN"
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        return Check("github", False, f"{api} refused the credentials ({exc.status} "
                     f"{_clean(str(message or ''), settings)}): check {what}")
    except Exception as exc:  # the connection itself: DNS, refused, timed out
        return Check("github", False, f"{api} does not answer ({type(exc).__name__}: "
                     f"{_clean(str(exc), settings)[:200]}); check FLOWBOT_GITHUB_API_URL and "
                     "the network")
    if scopes is None:
        return Check("github", True, f"token of {login} at {api} (fine-grained or App token: "
                     "no scopes listed; it needs Contents read, Issues, Pull requests, "
                     "Commit statuses and Checks write on the repositories)")
    if "repo" not in scopes:
        return Check("github", False, f"the token of {login} has scopes "
                     f"{', '.join(scopes) or '(none)'} but not repo: flowbot reads private "
                     "repositories and writes statuses and comments; make a token with the "
                     "repo scope")
    return Check("github", True, f"token of {login} at {api} with scopes {', '.join(scopes)}")


# --- webhook secret and public URL ------------------------------------------------------

def check_webhook_secret(settings: Settings, timeout: float) -> Check:
    secret = settings.webhook_secret
    if not secret:
        return Check("webhook secret", False, "FLOWBOT_WEBHOOK_SECRET is not set: set it to "
                     "the secret of the GitHub webhook, e.g. " + NEW_SECRET)
    if len(secret) < MIN_SECRET_LENGTH:
        return Check("webhook secret", False, f"FLOWBOT_WEBHOOK_SECRET is {len(secret)} "
                     f"characters; use at least {MIN_SECRET_LENGTH} random ones (e.g. "
                     f"{NEW_SECRET}) here and on the GitHub webhook")
    return Check("webhook secret", True, f"set ({len(secret)} characters)")


def check_public_url(settings: Settings, timeout: float) -> Check:
    import httpx

    url = settings.public_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check("public url", False, f"FLOWBOT_PUBLIC_URL={settings.public_url!r} is not "
                     "an absolute http(s) URL; set it to where GitHub and people reach "
                     "flowbot, e.g. https://flowbot.example.com")
    try:
        answer = httpx.get(f"{url}/healthz", timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        return Check("public url", False, f"{url}/healthz does not answer ({type(exc).__name__}"
                     f"{': ' + str(exc)[:150] if str(exc) else ''}); start flowbot serve, "
                     "or fix FLOWBOT_PUBLIC_URL or the proxy in front of it")
    if answer.status_code != 200:
        return Check("public url", False, f"{url}/healthz answered {answer.status_code}; it "
                     "should be flowbot's 200: check FLOWBOT_PUBLIC_URL and the proxy")
    note = "" if parts.scheme == "https" else " (plain http: use https where GitHub sends it)"
    return Check("public url", True, f"{url}/healthz answers 200{note}")
