"""Task logs on the real Docker engine: fast output is stored whole (the engine
may end a followed log stream before its end when the task exits), and past
the per-attempt cap a log is cut with a note in it and on the attempt; in files
(the SQLite default) and in the database (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from enginekit import Kit, make_kit, task

from runner.running.logstore import make_log_store
from runner.state.db import connect
from runner.state.records import Status

pytestmark = pytest.mark.docker


@pytest.fixture(params=["files", pytest.param("database", marks=pytest.mark.postgres)])
def kit(request: pytest.FixtureRequest, tmp_path: Path, docker_client: docker.DockerClient,
        busybox_image: str) -> Kit:
    """The run service with the log store its database gets in ``flowbot serve``."""
    url = (f"sqlite:///{tmp_path / 'flowbot.db'}" if request.param == "files"
           else request.getfixturevalue("postgres_url"))
    engine = connect(url)
    request.addfinalizer(engine.dispose)
    return make_kit(tmp_path, engine, docker_client,
                    logs=make_log_store(engine, tmp_path / "data"))


def test_fast_output_is_stored_whole(kit: Kit) -> None:
    # several tasks at once: the stream used to end early in most of them
    names = ["a", "b", "c"]
    run = kit.run({"id": "fast", "tasks": [
        task(name, "seq 1 200000; echo END") for name in names]})
    assert run.status is Status.SUCCESS, run.error
    expected = "".join(f"{n}\n" for n in range(1, 200001)) + "END\n"
    for name in names:
        text = kit.log(run.id, name)
        assert len(text.splitlines()) == 200001, name
        assert text == expected, name
        assert kit.store.attempts(run.id, name)[0].reason is None


def test_past_the_cap_the_log_is_cut_with_a_note(kit: Kit) -> None:
    kit.service.log_max_bytes = 64 * 1024
    run = kit.run({"id": "loud", "tasks": [task("t", "seq 1 100000; echo END")]})
    assert run.status is Status.SUCCESS, run.error
    text = kit.log(run.id, "t")
    kept, note = text.split("[flowbot: ")
    lines = kept.splitlines()
    assert lines == [str(n) for n in range(1, len(lines) + 1)]  # whole lines, in order
    assert 64 * 1024 - 8 < len(kept.encode()) <= 64 * 1024
    assert note == ("log cut here at 64 KiB (FLOWBOT_LOG_MAX_BYTES); "
                    "the rest of this attempt's output was not kept]\n")
    attempt = kit.store.attempts(run.id, "t")[0]
    dropped = len("".join(f"{n}\n" for n in range(1, 100001)) + "END\n") - len(kept)
    assert attempt.reason == (f"log cut at 64 KiB (FLOWBOT_LOG_MAX_BYTES); "
                              f"{dropped} more bytes of output not kept")
    assert kit.store.task_rows(run.id)[0].reason == attempt.reason


def test_a_log_under_the_cap_has_no_note(kit: Kit) -> None:
    kit.service.log_max_bytes = 64 * 1024
    run = kit.run({"id": "quiet", "tasks": [task("t", "echo one", "echo two >&2")]})
    assert run.status is Status.SUCCESS
    assert sorted(kit.log(run.id, "t").splitlines()) == ["one", "two"]  # two streams
    assert kit.store.attempts(run.id, "t")[0].reason is None
