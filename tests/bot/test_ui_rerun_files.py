"""Re-run from the run page of a run with a file input, over the real app, a real
database and the fake GitHub over HTTP: a file read from a repository path is read
again at the run's commit; an uploaded one (removed with its run) is refused,
naming the input and saying how to start a new run with the file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services import Services
from runner.state.records import Trigger, TriggerType
from tests.bot.test_ui_flow import _client, _csrf
from tests.bot.ui_flow_kit import DEPLOY_SHA, StagingRuns
from tests.bot.ui_kit import MINE, USER
from tests.fakegithub.server import FakeGitHub
from tests.fakes import TestClient

ROWS = b"id,name\n1,ana\n2,bo\n"


@pytest.fixture
def writer(sqlite_engine: Engine, tmp_path: Path,
           fake_github: FakeGitHub) -> tuple[TestClient, Services, StagingRuns]:
    return _client(sqlite_engine, tmp_path, fake_github)


def test_a_file_from_a_repository_path_is_read_again_at_the_commit(writer: tuple) -> None:
    client, svc, runs = writer
    (runs.inputs_dir / "rows.csv").write_bytes(ROWS)  # the repository at DEPLOY_SHA
    registered = svc.registry.get(MINE, "deploy")
    assert registered is not None
    first = runs.submit(registered.flow, {"count": "2", "data": "@rows.csv"}, repo=MINE,
                        commit=DEPLOY_SHA, source=None, trigger=Trigger(TriggerType.MANUAL, USER))
    shutil.rmtree(runs.inputs_dir / "staged")  # the kit stages every run in one folder
    page = client.get(f"/runs/{first.run_id}").text
    again = client.post(f"/runs/{first.run_id}/rerun", data={"csrf": _csrf(page)})
    assert again.status_code == 303, again.text
    [_, second] = runs.submitted
    assert again.headers["location"] == f"/runs/{second['run_id']}"
    digest = hashlib.sha256(ROWS).hexdigest()
    assert second["inputs"]["data"] == {"source": "@rows.csv", "size": len(ROWS),
                                        "sha256": digest}
    assert second["inputs"]["count"] == 2
    recorded = svc.store.get_run(second["run_id"])
    assert recorded is not None and recorded.commit == DEPLOY_SHA
    assert recorded.inputs["data"]["sha256"] == digest


def test_an_uploaded_file_cannot_be_sent_again_and_the_answer_says_why(
        writer: tuple) -> None:
    client, _, runs = writer
    csrf = _csrf(client.get(f"/flows/{MINE}/deploy").text)
    started = client.post(f"/flows/{MINE}/deploy/run", data={"csrf": csrf, "count": "1"},
                          files={"data": ("rows.csv", ROWS, "text/csv")})
    assert started.status_code == 303
    [first] = runs.submitted
    page = client.get(f"/runs/{first['run_id']}").text
    refused = client.post(f"/runs/{first['run_id']}/rerun", data={"csrf": _csrf(page)})
    assert refused.status_code == 409
    text = refused.text.replace("&#39;", "'").replace("&#34;", '"')
    assert 'input "data"' in text and "uploaded file rows.csv" in text
    assert "flow page's Run form" in text and "/run" in text
    assert len(runs.submitted) == 1  # nothing started
