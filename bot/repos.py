"""Repository content through GitPython: one bare mirror per repository under
``<data_dir>/mirrors/<owner>/<name>.git``, cloned on first use and fetched only
when a wanted commit is missing. Flows are read from the object store, and a
run is given the mirror and its commit (``runner/running/workspace.py`` copies that
tree out): nothing is ever checked out into a shared work tree.

Replicas share the data dir, so a mirror is shared between processes too: every
clone or fetch of one repository holds an ``fcntl`` lock on the file
``<name>.git.lock`` next to the mirror (as well as a thread lock within the
process), so two processes never run git on one mirror at once and the second
finds the first's clone or fetch done.

For https remotes the token travels as an ``http.extraHeader`` passed through
git's environment (``GIT_CONFIG_*``): never in the repository's config, the
remote URL, a log line or an error message.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git

from runner.errors import FlowbotError
from runner.loading import yamlload

log = logging.getLogger(__name__)
GIT_TIMEOUT = 300  # seconds a clone or fetch may take before it is killed
FLOW_SUFFIXES = (".yml", ".yaml")
_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
MAX_FLOW_FILES = 1000  # flow files in a repository's flows/
MAX_FLOW_FILE_BYTES = yamlload.MAX_BYTES  # one flow file (1 MiB), as the validator says
MAX_FLOWS_BYTES = 16 * 1024 * 1024  # all flow files of a repository together
_MAX_TREE_BYTES = 4 * 1024 * 1024  # the flows/ tree object itself: ~40,000 entries
TOO_MANY_FILES = (  # messages fit a commit status (140 characters) for short paths
    "{directory}/ has more than {limit:,} flow files; a repository may have at most "
    "{limit:,}: merge flows or move some out of {directory}/"
)
TOO_MANY_ENTRIES = (
    "{directory}/ lists {size:,} bytes of entries, far more than {limit:,} flow files "
    "need; move other files out of {directory}/"
)
FILE_TOO_BIG = (
    "{path} is {size:,} bytes; a flow file may be at most {limit:,}: make it smaller "
    "or split it into several flows"
)
TOO_MANY_BYTES = (
    "{directory}/ passes {mib} MiB of flow files at {path}; a repository's flows may "
    "total at most {mib} MiB: make them smaller or fewer"
)


class RepoError(FlowbotError):
    """A repository's content could not be had."""


class BadRepoName(RepoError):
    def __init__(self, full_name: str) -> None:
        super().__init__(f'"{full_name}" is not an owner/name repository name')


class UnknownCommit(RepoError):
    def __init__(self, full_name: str, sha: str) -> None:
        self.sha = sha
        super().__init__(f"commit {sha} is not in {full_name}, even after fetching it; "
                         "was it force-pushed away?")


class FlowsTooLarge(RepoError):
    """The flows at a commit are over a repository limit; the rest was not read."""


class RemoteUnreachable(RepoError):
    def __init__(self, full_name: str, url: str, detail: str) -> None:
        super().__init__(f"cannot fetch {full_name} from {url}: {detail}")


class Mirrors:
    """Bare mirrors of the repositories flowbot serves; safe to share between threads."""

    def __init__(self, data_dir: Path, token: str = "") -> None:
        self.root = data_dir / "mirrors"
        self._token = token
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._tokens: dict[Path, str] = {}  # per-mirror token, kept in memory only

    def path_of(self, full_name: str) -> Path:
        owner, name = _split(full_name)
        return self.root / owner / f"{name}.git"

    def mirror(self, full_name: str, clone_url: str, want: str | None = None,
               token: str | None = None) -> Path:
        """The mirror of ``full_name``: cloned from ``clone_url`` if absent, fetched
        if ``want`` (a sha) is given and missing. ``token`` overrides the default
        (e.g. a GitHub App installation token) for this repository."""
        path = self.path_of(full_name)
        if token is not None:
            self._tokens[path] = token
        with self._lock(path):
            if not (path / "HEAD").exists():  # checked under the lock: another may have cloned
                self._clone(full_name, clone_url, path)
            elif want is not None and _SHA.fullmatch(want) \
                    and not _has_commit(git.Repo(path), want):
                self._fetch(path)
        return path

    def fetch(self, mirror: Path) -> None:
        """Bring the mirror up to date with its remote (all branches, tags, PR refs)."""
        with self._lock(mirror):
            self._fetch(mirror)

    def read_flows(self, mirror: Path, sha: str, directory: str = "flows") -> dict[str, bytes]:
        """The ``<directory>/*.yml``/``*.yaml`` blobs at ``sha`` by repository path.

        Read from the object store; content is passed through as bytes (binary
        or symlink blobs too) for the validator to judge. What is read is
        bounded: raises :class:`FlowsTooLarge` past :data:`MAX_FLOW_FILES` files,
        a blob over :data:`MAX_FLOW_FILE_BYTES` (its size is checked before it is
        read) or :data:`MAX_FLOWS_BYTES` in all.
        """
        commit = self._commit(mirror, sha)
        try:
            tree = commit.tree / directory
        except KeyError:
            return {}  # no flows directory at that commit
        if tree.type != "tree":
            return {}  # "flows" is a file, not a directory
        return _read_bounded(tree, directory)

    # -- internals ----------------------------------------------------------

    def _commit(self, mirror: Path, sha: str) -> git.Commit:
        if not _SHA.fullmatch(sha):
            raise UnknownCommit(_name_of(mirror), sha)  # only commit ids are looked up
        repo = git.Repo(mirror)
        if not _has_commit(repo, sha):
            self.fetch(mirror)
            repo = git.Repo(mirror)
        if not _has_commit(repo, sha):
            raise UnknownCommit(_name_of(mirror), sha)  # not upstream either
        return repo.commit(sha)

    def _clone(self, full_name: str, url: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        env = self._env(path, url)
        try:
            with _git_errors(full_name, url, self._token_for(path)):
                git.Repo.clone_from(url, staging / "repo", mirror=True, env=env,
                                    kill_after_timeout=GIT_TIMEOUT)
            (staging / "repo").rename(path)  # a half-done clone is never seen as a mirror
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("mirror cloned", extra={"repo": full_name, "url": _safe_url(url)})

    def _fetch(self, path: Path) -> None:
        repo = git.Repo(path)
        url = repo.remotes.origin.url
        with _git_errors(_name_of(path), url, self._token_for(path)):
            repo.git.fetch("--prune", "origin", env=self._env(path, url),
                           kill_after_timeout=GIT_TIMEOUT)
        log.info("mirror fetched", extra={"repo": _name_of(path), "url": _safe_url(url)})

    def _token_for(self, path: Path) -> str:
        return self._tokens.get(path, self._token)

    def _env(self, path: Path, url: str) -> dict[str, str]:
        # Never wait for a password prompt; give up on a transfer stalled for a minute.
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true",
               "GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "60"}
        token = self._token_for(path)
        if token and urlsplit(url).scheme == "https":
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                       GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
        return env

    @contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """Hold ``path``'s mirror for one clone or fetch: the thread lock of this
        process, then the ``fcntl`` lock of ``<mirror>.lock`` shared with other processes
        on the same data dir (released by the kernel if the process dies)."""
        with self._locks_guard:
            local = self._locks.setdefault(path, threading.Lock())
        with local:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_name(path.name + ".lock"), "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # waits for the other process
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_bounded(tree: git.Tree, directory: str) -> dict[str, bytes]:
    """The flow blobs of ``tree``, refusing (before reading them) more files or bytes
    than a repository may have: one PR must not be able to fill the bot's memory."""
    if tree.size > _MAX_TREE_BYTES:
        raise FlowsTooLarge(TOO_MANY_ENTRIES.format(
            directory=directory, size=tree.size, limit=MAX_FLOW_FILES))
    blobs = [item for item in tree
             if item.type == "blob" and item.name.endswith(FLOW_SUFFIXES)]
    if len(blobs) > MAX_FLOW_FILES:
        raise FlowsTooLarge(TOO_MANY_FILES.format(
            directory=directory, limit=MAX_FLOW_FILES))
    files: dict[str, bytes] = {}
    total = 0
    for blob in blobs:
        path, size = f"{directory}/{blob.name}", blob.size  # from the object header
        if size > MAX_FLOW_FILE_BYTES:
            raise FlowsTooLarge(FILE_TOO_BIG.format(
                path=path, size=size, limit=MAX_FLOW_FILE_BYTES))
        total += size
        if total > MAX_FLOWS_BYTES:
            raise FlowsTooLarge(TOO_MANY_BYTES.format(
                directory=directory, mib=MAX_FLOWS_BYTES // 2**20, path=path))
        files[path] = blob.data_stream.read()
    return files


def _split(full_name: str) -> tuple[str, str]:
    if not _NAME.fullmatch(full_name) or ".." in full_name:
        raise BadRepoName(full_name)
    owner, name = full_name.lower().split("/")
    return owner, name.removesuffix(".git")


def _name_of(mirror: Path) -> str:
    return f"{mirror.parent.name}/{mirror.name.removesuffix('.git')}"


def _has_commit(repo: git.Repo, sha: str) -> bool:
    """True if ``sha`` names a commit in ``repo`` (``repo.commit`` does not check)."""
    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _safe_url(url: str) -> str:
    """``url`` without any user:password part."""
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@contextmanager
def _git_errors(full_name: str, url: str, token: str) -> Iterator[None]:
    """git failures as :class:`RemoteUnreachable`, with credentials masked."""
    try:
        yield
    except git.GitCommandError as exc:
        lines = [line for line in str(exc.stderr or "").splitlines() if line.strip()]
        detail = lines[-1].strip(" '\"") if lines else f"git exited with {exc.status}"
        detail = detail.replace(url, _safe_url(url))
        if token:
            detail = detail.replace(token, "***")
        raise RemoteUnreachable(full_name, _safe_url(url), detail) from None
