"""Push sync validates in the same capped child as a pull request: a pushed commit
(which need not have gone through a PR) whose flows overrun FLOWBOT_VALIDATE_SECONDS or
FLOWBOT_VALIDATE_MEMORY_MB gets a flowbot/sync failure saying which limit, the bot's
process goes on, and the registry is left as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.handlers import build_router
from bot.intake.router import Event
from bot.services import Services
from tests.clock import FakeClock
from tests.fakes import FakeFlowSource, LocalGitHub, make_services, push_event
from tests.runner.test_validate_sandbox import HOSTILE, _children

ROOT = Path(__file__).resolve().parents[2]
GOOD = b"id: good\ntasks:\n  - {id: t, image: 'busybox:latest', commands: [echo hi]}\n"
OTHER = b"id: other\ntasks:\n  - {id: t, image: 'busybox:latest', commands: [echo other]}\n"
TOO_SLOW = ("Nothing registered: not validated: validating the flows took longer than 0.01s "
            "and was stopped; make the flows smaller or fewer")


def _services(engine: Engine) -> Services:
    services = make_services(engine, FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))
    assert isinstance(services.repos, FakeFlowSource)
    services.repos.commits["1" * 40] = {"flows/good.yml": GOOD}
    services.repos.commits["2" * 40] = {"flows/other.yml": OTHER, "flows/hostile.yml": HOSTILE}
    services.repos.commits["3" * 40] = {"flows/good.yml": GOOD, "flows/other.yml": OTHER}
    return services


def _push(services: Services, sha: str) -> tuple[str, str]:
    build_router().dispatch(Event("push", push_event(after=sha), f"d-{sha[0]}"), services)
    assert isinstance(services.github, LocalGitHub)
    statuses = [s for s in services.github.clients["acme/flows"].statuses if s["sha"] == sha]
    assert [(s["context"], s["state"]) for s in statuses][0] == ("flowbot/sync", "pending")
    return str(statuses[-1]["state"]), str(statuses[-1]["description"])


def test_a_push_over_the_time_cap_registers_nothing_and_says_why(
        sqlite_engine: Engine) -> None:
    services = _services(sqlite_engine)
    assert _push(services, "1" * 40)[0] == "success"
    registered = services.registry.digests("acme/flows")
    services.settings = replace(services.settings, validate_seconds=0.01)
    before = _children()
    assert _push(services, "2" * 40) == ("failure", TOO_SLOW)
    assert _children() == before  # the child was killed and reaped
    # nothing registered, nothing removed: good stays as it was, other is not added
    assert services.registry.digests("acme/flows") == registered
    assert [f.flow.id for f in services.registry.list("acme/flows")] == ["good"]
    # the bot goes on: the next push is validated (in a child) and registered
    services.settings = replace(services.settings, validate_seconds=60)
    assert _push(services, "3" * 40) == (
        "success", "1 added, 0 changed, 0 removed, 1 unchanged")


_MEMORY_CASE = """
import json, sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from bot.handlers import build_router
from bot.intake.router import Event
from runner.state.db import connect
from tests.clock import FakeClock
from tests.fakes import make_services, push_event
hostile = b"id: hostile\\ntasks: [" + b"0," * 500_000 + b"0]\\n"
services = make_services(connect("sqlite:///" + sys.argv[1]),
                         FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))
services.settings = replace(services.settings, validate_memory_mb=int(sys.argv[2]))
services.repos.commits["2" * 40] = {"flows/hostile.yml": hostile}
build_router().dispatch(Event("push", push_event(after="2" * 40), "d"), services)
statuses = services.github.clients["acme/flows"].statuses
print(json.dumps({"statuses": [[s["state"], s["description"]] for s in statuses],
                  "registered": sorted(services.registry.digests("acme/flows"))}))
"""


def test_a_push_over_the_memory_cap_registers_nothing_and_says_why(tmp_path: Path) -> None:
    """In a fresh interpreter: a long-lived process (this test run) has freed heap it
    still maps, which the child may reuse under its cap."""
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CASE, str(tmp_path / "flowbot.db"), "32"],
        capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "statuses": [
            ["pending", "Registering flows and schedules…"],
            ["failure", "Nothing registered: not validated: validating the flows needed more "
                        "than 32 MB and was stopped; make the flows smaller or fewer"]],
        "registered": [],
    }
