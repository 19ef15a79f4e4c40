"""bot/repos.py on real git repositories made in tmp_path."""

from __future__ import annotations

import logging
import threading
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest
from sqlalchemy.engine import Engine

from bot.handlers import build_router
from bot.intake.router import Event
from bot.repos import (
    MAX_FLOW_FILES,
    MAX_FLOWS_BYTES,
    BadRepoName,
    FlowsTooLarge,
    Mirrors,
    RemoteUnreachable,
    UnknownCommit,
)
from bot.services import Services
from tests.bot.e2e_support import Origin
from tests.clock import FakeClock
from tests.fakes import (
    FakeFlowSource,
    LocalGitHub,
    make_services,
    pull_request_event,
    push_event,
)

FLOW_V1 = b"id: nightly\ntasks: []\n"
FLOW_V2 = b"id: nightly\nschedule: '0 3 * * *'\ntasks: []\n"


Upstream = Origin  # a working repository standing in for GitHub's


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream(tmp_path / "upstream")


@pytest.fixture
def mirrors(tmp_path: Path) -> Mirrors:
    return Mirrors(tmp_path / "data")


def test_mirror_from_a_local_path_reads_flows_at_old_and_new_shas(
        upstream: Upstream, mirrors: Mirrors) -> None:
    old = upstream.commit({"flows/nightly.yml": FLOW_V1, "flows/README.md": b"docs",
                           "flows/sub/deep.yml": b"id: deep\n", "src/app.py": b"pass\n"})
    new = upstream.commit({"flows/nightly.yml": FLOW_V2, "flows/other.yaml": b"id: other\n"})
    path = mirrors.mirror("Octo/Flows", str(upstream.path))
    assert path == mirrors.root / "octo" / "flows.git"
    assert git.Repo(path).bare
    assert mirrors.read_flows(path, old) == {"flows/nightly.yml": FLOW_V1}
    assert mirrors.read_flows(path, new) == {"flows/nightly.yml": FLOW_V2,
                                             "flows/other.yaml": b"id: other\n"}


def test_a_new_upstream_commit_is_fetched_only_when_wanted(
        upstream: Upstream, mirrors: Mirrors) -> None:
    first = upstream.commit({"flows/a.yml": FLOW_V1})
    path = mirrors.mirror("octo/flows", f"file://{upstream.path}")
    assert mirrors.mirror("octo/flows", f"file://{upstream.path}", want=first) == path
    assert not (path / "FETCH_HEAD").exists()  # present: no fetch
    second = upstream.commit({"flows/a.yml": None, "flows/b.yml": FLOW_V2})
    mirrors.mirror("octo/flows", f"file://{upstream.path}", want=second)
    assert (path / "FETCH_HEAD").exists()  # missing: fetched
    assert mirrors.read_flows(path, second) == {"flows/b.yml": FLOW_V2}


def test_read_flows_fetches_a_missing_commit_itself(upstream: Upstream,
                                                    mirrors: Mirrors) -> None:
    upstream.commit({"README.md": b"hi"})
    path = mirrors.mirror("octo/flows", str(upstream.path))
    later = upstream.commit({"flows/a.yml": FLOW_V1})
    assert mirrors.read_flows(path, later) == {"flows/a.yml": FLOW_V1}
    assert git.Repo(path).commit("refs/heads/main").hexsha == later  # the mirror moved on


def test_no_flows_directory_and_binary_files(upstream: Upstream, mirrors: Mirrors) -> None:
    bare = upstream.commit({"README.md": b"hi"})
    binary = upstream.commit({"flows/blob.yml": bytes(range(256))})
    path = mirrors.mirror("octo/flows", str(upstream.path))
    assert mirrors.read_flows(path, bare) == {}
    assert mirrors.read_flows(path, binary) == {"flows/blob.yml": bytes(range(256))}


def test_unknown_sha_and_unreachable_remote_are_clear_errors(
        upstream: Upstream, mirrors: Mirrors, tmp_path: Path) -> None:
    upstream.commit({"README.md": b"hi"})
    path = mirrors.mirror("octo/flows", str(upstream.path))
    with pytest.raises(UnknownCommit, match="0{40} is not in octo/flows"):
        mirrors.read_flows(path, "0" * 40)
    with pytest.raises(UnknownCommit):
        mirrors.read_flows(path, "--upload-pack=evil")
    with pytest.raises(RemoteUnreachable, match="cannot fetch octo/gone"):
        mirrors.mirror("octo/gone", str(tmp_path / "nowhere"))
    assert not mirrors.path_of("octo/gone").exists()  # no half-made mirror left behind
    with pytest.raises(BadRepoName):
        mirrors.mirror("../../etc", str(upstream.path))


def test_https_token_never_lands_in_config_or_errors(
        mirrors: Mirrors, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "ghs_secret0000000000000000000000000000"
    with pytest.raises(RemoteUnreachable) as raised:
        # Port 9 on loopback refuses at once: no network leaves this machine.
        mirrors.mirror("octo/flows", "https://user:pw@127.0.0.1:9/octo/flows.git", token=token)
    assert token not in str(raised.value) and "pw" not in str(raised.value)
    assert token not in caplog.text
    assert "127.0.0.1:9" in str(raised.value)
    assert mirrors._env(mirrors.path_of("octo/flows"),
                        "https://127.0.0.1:9/x")["GIT_CONFIG_KEY_0"] == "http.extraHeader"


def test_token_is_sent_only_as_a_header_and_not_stored(upstream: Upstream,
                                                       mirrors: Mirrors) -> None:
    upstream.commit({"flows/a.yml": FLOW_V1})
    path = mirrors.mirror("octo/flows", str(upstream.path), token="ghs_abc")
    config = (path / "config").read_text()
    assert "ghs_abc" not in config and "extraHeader" not in config
    assert "GIT_CONFIG_KEY_0" not in mirrors._env(path, str(upstream.path))  # not https


def test_concurrent_reads_and_fetches_share_one_mirror(upstream: Upstream,
                                                       mirrors: Mirrors) -> None:
    shas = [upstream.commit({"flows/a.yml": FLOW_V1 + bytes([65 + i])}) for i in range(3)]
    errors: list[BaseException] = []

    def work(sha: str) -> None:
        try:
            path = mirrors.mirror("octo/flows", str(upstream.path), want=sha)
            content = mirrors.read_flows(path, sha)["flows/a.yml"]
            assert content.endswith(bytes([65 + shas.index(sha)]))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(sha,)) for sha in shas * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # no staging clone left behind; the lock file shared with other processes stays
    assert sorted(p.name for p in (mirrors.root / "octo").iterdir()) == [
        "flows.git", "flows.git.lock"]


# --- bounded reads: a pull request cannot make the bot read unbounded flows --------

def _commit_many(upstream: Upstream, files: dict[str, bytes]) -> str:
    """Commit many files at once (one ``git add``, not one index write per file)."""
    for name, data in files.items():
        target = upstream.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    upstream.repo.git.add("-A")
    return str(upstream.repo.index.commit("many").hexsha)


def test_more_flow_files_than_a_repository_may_have_are_refused(
        upstream: Upstream, mirrors: Mirrors) -> None:
    files = {f"flows/f{i:04}.yml": f"id: f{i}\n".encode() for i in range(MAX_FLOW_FILES)}
    at_limit = _commit_many(upstream, {**files, "flows/README.md": b"not a flow"})
    over = _commit_many(upstream, {"flows/one-more.yaml": b"id: more\n"})
    path = mirrors.mirror("octo/flows", str(upstream.path))
    assert len(mirrors.read_flows(path, at_limit)) == 1000
    with pytest.raises(FlowsTooLarge) as caught:
        mirrors.read_flows(path, over)
    assert str(caught.value) == (
        "flows/ has more than 1,000 flow files; a repository may have at most 1,000: "
        "merge flows or move some out of flows/"
    )


def test_a_huge_flow_blob_is_refused_without_being_read(
        upstream: Upstream, mirrors: Mirrors) -> None:
    sha = _commit_many(upstream, {"flows/a.yml": FLOW_V1, "flows/huge.yml": b"#" * (64 << 20)})
    path = mirrors.mirror("octo/flows", str(upstream.path))
    tracemalloc.start()
    try:
        with pytest.raises(FlowsTooLarge) as caught:
            mirrors.read_flows(path, sha)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        "flows/huge.yml is 67,108,864 bytes; a flow file may be at most 1,048,576: "
        "make it smaller or split it into several flows"
    )
    assert peak < 8 << 20  # the 64 MiB blob was never read whole


def test_more_bytes_of_flows_than_a_repository_may_have_are_refused(
        upstream: Upstream, mirrors: Mirrors) -> None:
    size = MAX_FLOWS_BYTES // 16  # 1 MiB, the most one file may have
    files = {f"flows/f{i:02}.yml": b"#" * size for i in range(16)}
    at_limit = _commit_many(upstream, files)
    over = _commit_many(upstream, {"flows/g.yml": b"id: g\n"})
    path = mirrors.mirror("octo/flows", str(upstream.path))
    assert sum(map(len, mirrors.read_flows(path, at_limit).values())) == MAX_FLOWS_BYTES
    with pytest.raises(FlowsTooLarge) as caught:
        mirrors.read_flows(path, over)
    assert str(caught.value) == (
        "flows/ passes 16 MiB of flow files at flows/g.yml; a repository's flows may total "
        "at most 16 MiB: make them smaller or fewer"
    )


def _over_the_file_limit(upstream: Upstream, tmp_path: Path,
                         engine: Engine) -> tuple[str, Services]:
    """A commit with one flow file more than a repository may have, and services
    that read it through real mirrors of the real repository; (its sha, them)."""
    files = {f"flows/f{i:04}.yml": f"id: f{i}\n".encode() for i in range(MAX_FLOW_FILES + 1)}
    sha = _commit_many(upstream, files)
    services = make_services(engine, FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))
    services.repos = Mirrors(tmp_path / "data")
    return sha, services


def test_pull_request_over_the_file_limit_gets_a_failure_status_saying_so(
        upstream: Upstream, tmp_path: Path, sqlite_engine: Engine) -> None:
    sha, services = _over_the_file_limit(upstream, tmp_path, sqlite_engine)
    payload = pull_request_event("opened", 7, sha, clone_url=str(upstream.path))
    build_router().dispatch(Event("pull_request", payload, "delivery-7"), services)
    assert isinstance(services.github, LocalGitHub)
    client = services.github.clients["acme/flows"]
    message = ("flows/ has more than 1,000 flow files; a repository may have at most 1,000: "
               "merge flows or move some out of flows/")
    assert [(s["state"], s["description"]) for s in client.statuses] == [
        ("pending", "Validating flows/*.yml…"), ("failure", message)]
    [body] = client.bodies()
    assert message in body


def test_push_over_the_file_limit_registers_nothing_and_says_why(
        upstream: Upstream, tmp_path: Path, sqlite_engine: Engine) -> None:
    sha, services = _over_the_file_limit(upstream, tmp_path, sqlite_engine)
    payload = push_event(sha, clone_url=str(upstream.path))
    build_router().dispatch(Event("push", payload, "delivery-8"), services)
    assert isinstance(services.github, LocalGitHub)
    statuses = services.github.clients["acme/flows"].statuses
    assert [s["state"] for s in statuses] == ["pending", "failure"]
    assert statuses[-1]["description"] == (
        "Nothing registered: flows/ has more than 1,000 flow files; a repository may have at "
        "most 1,000: merge flows or move some out of flows/")
    assert services.registry.digests("acme/flows") == {}


def test_pull_request_whose_validation_overruns_its_child_fails_naming_the_limit(
        sqlite_engine: Engine) -> None:
    services = make_services(sqlite_engine, FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))
    services.settings = replace(services.settings, validate_seconds=0.01)
    hostile = b"id: hostile\ntasks: [" + b"0," * 500_000 + b"0]\n"  # ~0.5 s, ~150 MB
    assert isinstance(services.repos, FakeFlowSource)
    services.repos.commits["d" * 40] = {"flows/hostile.yml": hostile}
    payload = pull_request_event("opened", 9, "d" * 40)
    build_router().dispatch(Event("pull_request", payload, "delivery-9"), services)
    assert isinstance(services.github, LocalGitHub)
    client = services.github.clients["acme/flows"]
    assert [s["state"] for s in client.statuses] == ["pending", "failure"]
    [body] = client.bodies()
    assert ("not validated: validating the flows took longer than 0.01s and was stopped; "
            "make the flows smaller or fewer") in body
