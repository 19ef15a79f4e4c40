"""What the flow page's tests share (TestClient and browser): the bot of
:mod:`tests.bot.ui_kit` plus a flow ``deploy`` in ``acme/flows`` with typed inputs,
a four-task graph and a schedule that meets both DST changes of Europe/Paris; the
bot's own GitHub client on the fake (it asks the viewer's permission); and a run
service that records runs and stages file inputs with the runner's real code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.github.client import HttpPolicy, PyGithubClients
from bot.services import RepoClients, Services
from runner.running import input_files
from runner.running.inputs import coerce_inputs
from runner.running.service import Submission
from runner.state.records import Status
from runner.validation.validate import validate_files
from tests.bot.ui_kit import FLOW, MINE, USER, arrange_github, ui_services
from tests.fakegithub.server import FakeGitHub
from tests.fakes import FakeRuns

BOT_TOKEN = "ghp_bot-token-for-flow-page-tests"
DEPLOY_SHA = "b" * 40
DEPLOY = """id: deploy
description: Ship the site to a target
inputs:
  target: {type: choice, choices: [staging, prod], default: staging}
  dry_run: {type: bool, default: true}
  count: {type: int, required: true}
  tag: {type: string, pattern: "v[0-9]+"}
  data: {type: file}
triggers:
  - {id: nightly, type: schedule, cron: "30 2 * * *", timezone: Europe/Paris,
     inputs: {count: 1}}
tasks:
  - {id: build, image: "busybox:latest", commands: [echo b]}
  - {id: lint, image: "busybox:latest", commands: [echo l]}
  - {id: test, image: "busybox:latest", commands: [echo t], needs: [build]}
  - {id: ship, image: "busybox:latest", commands: [echo s], needs: [test, lint]}
"""


@dataclass
class StagingRuns(FakeRuns):
    """:class:`FakeRuns` whose file inputs are copied by the runner's ``stage_files``
    (into ``inputs_dir``), as the run service does before it records a run."""

    inputs_dir: Path = Path("/nonexistent")

    def submit(self, flow: Any, inputs: Mapping[str, Any], *, repo: str, commit: str | None,
               source: Path | None, trigger: Any, request_key: str | None = None) -> Any:
        values = coerce_inputs(flow.inputs, dict(inputs))
        staged = input_files.stage_files(values, self.inputs_dir, self.inputs_dir / "staged")
        run = self.store.create_run(flow, repo=repo, commit=commit, trigger=trigger,
                                    inputs=staged)
        self.submitted.append({"run_id": run.id, "inputs": staged, "trigger": trigger,
                               "source": source})
        return Submission(run.id, Status.QUEUED)


def flow_services(engine: Engine, data_dir: Path, fake: FakeGitHub, permission: str = "write",
                  public_url: str = "http://flowbot.test") -> tuple[Services, StagingRuns]:
    """The UI bot with ``deploy`` registered, ``ana`` holding ``permission`` on acme/flows."""
    arrange_github(fake)
    fake.add_collaborator(MINE, USER, permission)
    fake.add_token(BOT_TOKEN, "flowbot")
    fake.add_collaborator(MINE, "flowbot", "write")
    svc = ui_services(engine, data_dir, fake, public_url=public_url)
    svc.clients = RepoClients(PyGithubClients(fake.url, token=BOT_TOKEN,
                                              policy=HttpPolicy.fast()), svc.deliveries)
    nightly = FLOW.format(id="nightly", description="the nightly flow").encode()
    report = validate_files({"flows/nightly.yml": nightly, "flows/deploy.yml": DEPLOY.encode()})
    assert report.ok, [str(d) for d in report.diagnostics]
    svc.registry.sync(MINE, DEPLOY_SHA, report.flows)
    runs = StagingRuns(svc.store, inputs_dir=data_dir / "staging")
    runs.inputs_dir.mkdir()
    svc.runs = runs
    return svc, runs
