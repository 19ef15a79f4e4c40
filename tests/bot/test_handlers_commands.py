"""Comment commands: real-shaped issue_comment payloads through the real router."""

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from bot.github.interfaces import GitHubError
from bot.handlers import build_router
from bot.handlers.render import RUN_MARKER
from bot.intake.router import Event
from bot.services import Services
from runner.state.records import Status, TriggerType
from runner.validation.validate import validate_files
from tests.clock import FakeClock
from tests.fakes import (
    FakeFlowSource,
    FakeRuns,
    LocalGitHub,
    LocalRepoClient,
    issue_comment_event,
    make_services,
)

DEPLOY = b"""id: deploy
inputs:
  env: {type: choice, choices: [staging, prod], required: true}
  note: {type: string}
triggers:
  - {id: night, type: schedule, cron: "0 3 * * *", inputs: {env: staging}}
tasks:
  - {id: ship, image: "busybox:latest", commands: ["echo {{ inputs.env }}"]}
"""
SHA = "d" * 40


@pytest.fixture
def services(sqlite_engine: Engine) -> Services:
    svc = make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC)))
    svc.registry.sync("acme/flows", SHA, validate_files({"flows/deploy.yml": DEPLOY}).flows)
    github = svc.github
    assert isinstance(github, LocalGitHub)
    github.permissions.update({"writer": "write", "admin": "admin", "reader": "read"})
    return svc


_comment_ids = itertools.count(555)


def _comment(services: Services, body: str, delivery: str | None = None,
             **kwargs: object) -> LocalRepoClient:
    """Dispatch a new comment (its own id and delivery unless given)."""
    kwargs.setdefault("comment_id", next(_comment_ids))
    payload = issue_comment_event(body, **kwargs)  # type: ignore[arg-type]
    build_router().dispatch(Event("issue_comment", payload, delivery or str(uuid.uuid4())),
                            services)
    github = services.github
    assert isinstance(github, LocalGitHub)
    return github.for_repo("acme/flows", None)


def _runs(services: Services) -> FakeRuns:
    assert isinstance(services.runs, FakeRuns)
    return services.runs


def test_writer_runs_the_registered_flow_with_quoted_inputs(services: Services) -> None:
    client = _comment(services, 'Ship it\n/run deploy env=prod "note=big day"', login="writer",
                      comment_id=555)
    assert client.reactions == [(555, "eyes")]
    [sub] = _runs(services).submitted
    assert sub["inputs"] == {"env": "prod", "note": "big day"} and sub["commit"] == SHA
    assert sub["trigger"].type is TriggerType.MANUAL and sub["trigger"].actor == "writer"
    [body] = client.bodies()
    assert RUN_MARKER.format(run_id=sub["run_id"]) in body and "`ship`" in body
    [status] = client.statuses
    assert (status["sha"], status["state"], status["context"]) == (SHA, "pending",
                                                                  "flowbot/run/deploy")
    assert status["target_url"] == f"http://flowbot.test/runs/{sub['run_id']}"


def test_run_reply_is_edited_in_place_until_the_final_status(services: Services) -> None:
    client = _comment(services, "/run deploy env=staging", login="admin")
    run_id = _runs(services).submitted[0]["run_id"]
    _runs(services).finish(run_id, Status.FAILED, failed_task="ship")
    services.reporting.report(run_id)
    services.reporting.report(run_id)  # a repeated event posts no second final status
    [comment] = client.comments.values()
    assert comment["edits"] == 1 and "failed" in comment["body"]  # unchanged: not edited
    assert [s["state"] for s in client.statuses] == ["pending", "failure"]
    assert client.statuses[-1]["description"] == f"Run {run_id} failed in task ship"


def test_reader_is_refused_politely(services: Services) -> None:
    client = _comment(services, "/run deploy env=prod", login="reader", comment_id=555)
    assert _runs(services).submitted == []
    assert client.reactions == [(555, "eyes")]
    [body] = client.bodies()
    assert body.startswith("Sorry @reader, `/run` needs write access to this repository; "
                           "ask a maintainer to run it for you.")


def test_unknown_flow_gets_a_did_you_mean(services: Services) -> None:
    client = _comment(services, "/run deplyo", login="writer")
    [body] = client.bodies()
    assert 'no flow `deplyo`' in body and '(did you mean "deploy"?)' in body
    assert "Registered flows: `deploy`." in body


def test_bad_input_names_the_input_and_what_it_expects(services: Services) -> None:
    client = _comment(services, "/run deploy env=moon", login="writer")
    [body] = client.bodies()
    assert "input `env`" in body and "one of staging, prod" in body
    assert _runs(services).submitted == []


@pytest.mark.parametrize("kwargs", [
    {"login": "flowbot[bot]", "kind": "Bot"},
    {"login": "writer", "action": "edited"},
    {"login": "writer", "action": "deleted"},
])
def test_bots_and_edits_are_ignored(services: Services, kwargs: dict[str, object]) -> None:
    client = _comment(services, "/run deploy env=prod", **kwargs)
    assert client.calls == [] and _runs(services).submitted == []


def test_flowbots_own_comment_is_ignored(services: Services) -> None:
    client = _comment(services, "<!-- flowbot:run:x -->\n/run deploy env=prod", login="writer")
    assert client.calls == []


def test_help_is_answered_to_anyone(services: Services) -> None:
    client = _comment(services, "/help", login="reader")
    [body] = client.bodies()
    assert "/run <flow-id>" in body and "Sorry" not in body


def test_cancel_pause_and_resume(services: Services) -> None:
    _comment(services, "/run deploy env=prod", login="writer")
    run_id = _runs(services).submitted[0]["run_id"]
    client = _comment(services, f"/cancel {run_id}\n/cancel nosuch\n/pause deploy\n/resume deploy",
                      login="writer")
    [_, reply] = client.bodies()  # all four answered in one reply, in order
    answers = reply.split("\n\n---\n\n")
    assert answers[0] == f"@writer cancelling run `{run_id}`."
    assert answers[1] == "@writer there is no run `nosuch` of this repository."
    assert answers[2].startswith("@writer paused the schedules of `deploy`")
    assert answers[3].startswith("@writer resumed the schedules of `deploy`")
    assert services.wake_scheduler.is_set()
    assert services.store.get_run(run_id).status is Status.CANCELLED  # type: ignore[union-attr]


def _pull(services: Services, number: int, sha: str, fork: bool) -> None:
    from bot.github.interfaces import PullInfo

    client = services.github.for_repo("acme/flows", None)
    assert isinstance(client, LocalRepoClient)
    head = "mallory/flows" if fork else "acme/flows"
    client.pulls[number] = PullInfo(number, sha, "feature", head,
                                    f"https://github.com/{head}.git", "main", fork)


def test_same_repo_pr_runs_the_registered_version_never_its_head(services: Services) -> None:
    source = services.repos
    assert isinstance(source, FakeFlowSource)
    source.commits["f" * 40] = {"flows/deploy.yml": DEPLOY.replace(b"echo", b"echo new"),
                                "flows/pronly.yml": DEPLOY.replace(b"id: deploy", b"id: pronly")}
    _pull(services, 7, "f" * 40, fork=False)
    client = _comment(services, "/run deploy env=prod\n/run pronly env=prod", login="writer",
                      pull=True)
    [sub] = _runs(services).submitted
    assert sub["commit"] == SHA and sub["flow"] == "deploy"
    assert "get_pull" not in client.names()  # the PR head is never even looked at
    [body] = client.bodies()
    assert "never this pull request's version" in body
    assert "no flow `pronly` registered from the default branch" in body
    assert "runs only once it is merged" in body


def test_fork_pr_never_runs_its_own_version(services: Services) -> None:
    source = services.repos
    assert isinstance(source, FakeFlowSource)
    source.commits["f" * 40] = {"flows/deploy.yml": DEPLOY.replace(b"echo", b"curl evil")}
    _pull(services, 7, "f" * 40, fork=True)
    client = _comment(services, "/run deploy env=prod", login="writer", pull=True)
    [sub] = _runs(services).submitted
    assert sub["commit"] == SHA  # the registered default-branch version
    assert client.statuses[0]["sha"] == SHA


# --- floods: one reply per comment, permission first, refusals rate-limited ----------

def _clock(services: Services) -> FakeClock:
    assert isinstance(services.clock, FakeClock)
    return services.clock


def test_a_readers_300_help_lines_get_one_reply(services: Services) -> None:
    client = _comment(services, "/help\n" * 300, login="reader")
    [body] = client.bodies()
    assert body.count("**flowbot commands**") == 1 and "Sorry" not in body


def test_a_readers_300_run_lines_get_one_refusal_and_no_run(services: Services) -> None:
    client = _comment(services, "/run deploy env=prod\n" * 300, login="reader", number=8)
    [body] = client.bodies()
    assert body.startswith("Sorry @reader, `/run` needs write access")
    assert _runs(services).submitted == []
    assert client.names().count("permission_of") == 1


def test_a_strangers_300_bare_run_lines_get_one_refusal_not_300_errors(
    services: Services,
) -> None:
    client = _comment(services, "/run\n" * 300, login="stranger", number=9)
    [body] = client.bodies()
    assert "needs write access" in body and "needs a flow id" not in body
    assert client.names().index("permission_of") < client.names().index("create_comment")


def test_a_repeated_refusal_within_the_window_posts_nothing(services: Services) -> None:
    client = _comment(services, "/run deploy env=prod", login="reader")
    _clock(services).advance(599)
    _comment(services, "/run deploy env=prod\n/help", login="reader")
    _comment(services, "/cancel abc", login="reader")
    assert len(client.bodies()) == 1
    _comment(services, "/run deploy env=prod", login="reader", number=8)  # another issue
    assert len(client.bodies()) == 2
    _clock(services).advance(1)  # the window has passed
    _comment(services, "/run deploy env=prod", login="reader")
    assert len(client.bodies()) == 3


def test_a_refusal_lost_to_a_github_error_is_posted_when_the_delivery_is_retried(
    services: Services,
) -> None:
    client = services.github.for_repo("acme/flows", None)
    assert isinstance(client, LocalRepoClient)
    real = client.create_comment

    def outage(issue_number: int, body: str) -> int:
        raise GitHubError("create a comment", 502, "Bad Gateway")

    client.create_comment = outage  # type: ignore[method-assign]
    with pytest.raises(GitHubError):
        _comment(services, "/run deploy env=prod", delivery="d-retry", login="reader",
                 comment_id=4242)
    client.create_comment = real  # type: ignore[method-assign]
    _comment(services, "/run deploy env=prod", delivery="d-retry", login="reader",
             comment_id=4242)  # the worker's retry of the same delivery
    _comment(services, "/run deploy env=prod", delivery="d-retry", login="reader",
             comment_id=4242)  # and a redelivery after it was answered
    [body] = client.bodies()
    assert "needs write access" in body


def test_a_writers_commands_are_capped_and_answered_in_one_reply(services: Services) -> None:
    client = _comment(services, "/run deploy env=staging\n" * 300 + "/help", login="writer")
    assert len(_runs(services).submitted) == 10
    [body] = client.bodies()
    assert body.count("### ") == 10  # ten run sections
    assert "ignored 291 more command line(s) (lines 11–301)" in body
    assert "at most 10 commands are answered per comment" in body


def test_a_one_megabyte_comment_gets_one_reply(services: Services) -> None:
    body = "/run deploy env=staging\n" * (1024 * 1024 // 24)
    client = _comment(services, body, login="writer")
    assert len(_runs(services).submitted) == 10
    [reply] = client.bodies()
    assert "Only the first 65536 characters of this comment were read." in reply


def test_a_replayed_delivery_starts_no_second_run_and_posts_no_second_reply(
    services: Services,
) -> None:
    client = _comment(services, "/run deploy env=prod\n/run deploy env=staging",
                      login="writer", delivery="delivery-1", comment_id=900)
    _comment(services, "/run deploy env=prod\n/run deploy env=staging",
             login="writer", delivery="delivery-1", comment_id=900)
    assert len(_runs(services).submitted) == 2
    assert len(services.store.list_runs()) == 2
    [reply] = client.bodies()
    for run in services.store.list_runs():
        assert f"Run [{run.id}]" in reply


def test_a_reply_posted_just_before_a_crash_is_found_again(services: Services) -> None:
    from bot.handlers.command_replies import CommandReplies, comment_key

    client = _comment(services, "/run deploy env=prod", login="writer", delivery="d-2",
                      comment_id=901)
    key = comment_key("acme/flows", 901)
    with services.engine.begin() as conn:  # as if killed between posting and recording
        from bot.handlers.command_replies import command_replies

        conn.execute(command_replies.update().where(command_replies.c.comment_key == key)
                     .values(reply_id=None))
    assert CommandReplies(services.engine).begin(key, "acme/flows", 7) == (True, None)
    _comment(services, "/run deploy env=prod", login="writer", delivery="d-2", comment_id=901)
    assert len(client.bodies()) == 1 and len(services.store.list_runs()) == 1
