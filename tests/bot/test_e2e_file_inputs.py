"""File inputs from a ``/run`` comment, end to end: a file of the repository
(``@path``) and a file attached to the comment (downloaded from the fake
GitHub's attachment path over HTTP), mounted read-only into a real Docker task;
paths that leave the repository, links, foreign links and files over the cap
get a reply naming the input and nothing runs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.e2e_support import Bot, started_bot
from tests.fakegithub.fixtures import FAKE_REPO
from tests.fakegithub.server import FakeGitHub
from tests.fakes import push_event

pytestmark = pytest.mark.docker

CAP = 64  # bytes a file input may hold in these tests
REVENUE = """id: revenue
inputs:
  data: {type: file, required: true}
tasks:
  - id: show
    image: busybox:latest
    network: none
    commands:
      - 'echo "path={{ inputs.data }} env=$INPUT_DATA"'
      - cat /inputs/data
      - if echo x 2>/dev/null >> /inputs/data; then echo WROTE; else echo READ-ONLY; fi
"""
CSV = b"month,revenue\n2026-11,1200\n"


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub, busybox_image: str) -> Iterator[Bot]:
    with started_bot(tmp_path, fake_github, writers=["writer"], input_file_max_bytes=CAP) as made:
        yield made


def _registered(bot: Bot) -> None:
    bot.origin.commit({"flows/revenue.yml": REVENUE, "reports/2026-11.csv": CSV,
                             "reports/big.csv": b"x" * (CAP + 1)}, "revenue flow")
    os.symlink("/etc/passwd", bot.origin.path / "reports" / "link.csv")
    bot.origin.repo.index.add(["reports/link.csv"])
    bot.origin.repo.index.commit("a link")
    bot.deliver("push", push_event(str(bot.origin.repo.head.commit.hexsha), repo=FAKE_REPO,
                                   clone_url=str(bot.origin.path)))
    bot.settle()


def _ask(bot: Bot, body: str) -> str:
    """Comment ``body`` on a new issue; flowbot's one reply (as it ends up)."""
    issue = bot.fake.add_issue(FAKE_REPO, body)
    bot.deliver("issue_comment", bot.comment(issue, body, "writer"))
    bot.settle()
    for run in bot.runtime.services.store.list_runs(repo=FAKE_REPO):
        bot.wait_run(run.id)
    [reply] = bot.fake.comments(FAKE_REPO, issue)[1:]
    return reply


def test_a_repository_file_and_an_attachment_reach_the_task_read_only(bot: Bot) -> None:
    _registered(bot)
    store = bot.runtime.services.store

    _ask(bot, "/run revenue data=@reports/2026-11.csv")
    [run] = store.list_runs(repo=FAKE_REPO)
    assert bot.wait_run(run.id).status.value == "success"
    log = bot.client.get(f"/runs/{run.id}/logs/show").text
    assert log.splitlines() == ["path=/inputs/data env=/inputs/data",
                                *CSV.decode().splitlines(), "READ-ONLY"]
    page = bot.client.get(f"/runs/{run.id}").text
    assert "data=@reports/2026-11.csv" in page
    assert hashlib.sha256(CSV).hexdigest() in page and f"<td>{len(CSV)}</td>" in page
    assert not (bot.runtime.services.settings.data_dir / "work" / run.id).exists()

    attached = b"month,revenue\n2026-12,7\n"
    url = bot.fake.add_attachment("data.csv", attached)
    _ask(bot, f"/run revenue data=[data.csv]({url})")
    latest = store.list_runs(repo=FAKE_REPO)[0]
    assert bot.wait_run(latest.id).status.value == "success"
    assert "2026-12,7" in bot.client.get(f"/runs/{latest.id}/logs/show").text
    assert store.get_run(latest.id).inputs["data"] == {  # type: ignore[union-attr]
        "source": url, "size": len(attached), "sha256": hashlib.sha256(attached).hexdigest()}
    # the storage redirect was followed without the bot's token
    storage = bot.fake.requests_to("GET", r"/storage/.*")
    assert [r.status for r in storage] == [200]


def test_bad_files_are_refused_by_name_and_nothing_runs(bot: Bot) -> None:
    _registered(bot)
    foreign = "https://evil.example.com/user-attachments/files/1/data.csv"
    big = bot.fake.add_attachment("big.csv", b"y" * (CAP + 1), repo=FAKE_REPO)
    answers = {
        "/run revenue data=@../../etc/passwd": "is not a relative path inside the repository",
        "/run revenue data=@/etc/passwd": "is not a relative path inside the repository",
        "/run revenue data=@reports/link.csv": "goes through a symbolic link",
        "/run revenue data=@reports/none.csv": "no such file in the repository",
        "/run revenue data=@reports/big.csv": f"larger than {CAP:,} bytes",
        f"/run revenue data={foreign}": "is not a file attached on http://127.0.0.1",
        f"/run revenue data={big}": f"larger than {CAP:,} bytes",
    }
    for command, problem in answers.items():
        reply = _ask(bot, command)
        assert "cannot run `revenue`: input `data`" in reply, reply
        assert problem in reply, reply
    assert bot.runtime.services.store.list_runs(repo=FAKE_REPO) == []
    # only the big attachment was fetched (and cut off); the foreign link never was
    fetched = [r.path for r in bot.fake.requests if "/files/" in r.path]
    assert fetched == [f"/octo/flows/files/{big.split('/files/')[1]}",
                       f"/storage/octo/flows/files/{big.split('/files/')[1]}"]
