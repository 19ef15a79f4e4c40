"""Stage a Docker build context for flowbot's image or its PostgreSQL image, offline.

Run by ``deploy/build-image`` with the project's ``.venv`` Python:

    python deploy/stage_context.py flowbot  <dir> [--base python:3.11-slim]
    python deploy/stage_context.py postgres <dir> [--base python:3.11-slim]

Neither image needs a registry. Both start FROM the Python image ``./dev`` already
has (pulled, or built offline by ``runner/offline_images.py``: Debian bookworm's
python3 without pip). What they add comes from this machine:

- ``site/``: flowbot's runtime dependencies (its requirements and the ``postgres``
  extra, never ``dev``), copied file by file from the installed distributions of
  the running interpreter (their RECORD), plus flowbot's own ``bot`` and ``runner``
  packages from this source tree as committed (``HEAD``; ``--source worktree``
  takes uncommitted edits too). The image's ``python3`` finds them in
  ``/usr/local/lib/python3.11/dist-packages``. Compiled parts are manylinux wheels'
  and need the image's Python to be the same minor version (3.11): checked.
- ``debs/``: the Debian packages the image lacks (``git`` for the mirrors;
  ``postgresql-15`` for the database image), with exactly the dependencies the
  image does not have yet, downloaded by this machine's apt against the image's own
  dpkg status file (so this machine must be Debian bookworm like the image).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PACKAGES = {"flowbot": ["git", "ca-certificates"], "postgres": ["postgresql-15"]}
EXTRAS = ("postgres",)  # flowbot's extras the image installs
SKIP = ("__pycache__",)


class StageError(Exception):
    """Something this machine lacks to stage the context; the message says what to do."""


def _closure(root: str, extras: tuple[str, ...]) -> list[Distribution]:
    """The installed distributions ``root`` needs with ``extras``, ``root`` excluded."""
    seen: dict[str, Distribution] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    done: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in done:
            continue
        done.add((canonicalize_name(name), wanted))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise StageError(f"{name} is not installed in {sys.prefix}; run ./dev lint "
                             "(it installs flowbot's .venv) or pip install it") from None
        for text in dist.requires or []:
            req = Requirement(text)
            markers = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(m) for m in markers):
                continue
            key = canonicalize_name(req.name)
            if key not in seen:
                seen[key] = distribution(req.name)
                todo.append((req.name, tuple(sorted(req.extras))))
            elif req.extras:
                todo.append((req.name, tuple(sorted(req.extras))))
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _copy_packages(site: Path, source: str) -> None:
    """flowbot's ``bot`` and ``runner`` packages: as committed (``HEAD``) or as the
    working tree has them (``worktree``, uncommitted edits included)."""
    packages = ("bot", "runner")
    if source == "worktree":
        for package in packages:
            shutil.copytree(ROOT / package, site / package,
                            ignore=shutil.ignore_patterns(*SKIP, "*.pyc"))
        return
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", source,
                              *packages], capture_output=True, check=False)
    if archive.returncode != 0:
        raise StageError(f"git archive {source} failed (not a git checkout? use "
                         f"--source worktree): {archive.stderr.decode().strip()[-300:]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(site, filter="data")


def stage_site(site: Path, source: str = "HEAD") -> list[str]:
    """Copy flowbot's runtime dependencies and its packages into ``site``."""
    if sys.version_info[:2] != (3, 11):
        raise StageError("the image's python3 is 3.11: run this with a Python 3.11 "
                         f"(.venv/bin/python), not {sys.version.split()[0]}")
    names = []
    for dist in _closure("flowbot", EXTRAS):
        base = Path(str(dist.locate_file("")))
        for entry in dist.files or []:
            found = Path(str(dist.locate_file(entry))).resolve()
            if not found.is_relative_to(base.resolve()) or SKIP[0] in entry.parts:
                continue  # scripts in bin/, byte code: not needed
            if found.is_file():
                target = site / entry
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, target)
        names.append(f"{dist.metadata['Name']}=={dist.version}")
    _copy_packages(site, source)
    info = site / "flowbot-0.1.0.dist-info"
    info.mkdir()
    version = distribution("flowbot").version
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: flowbot\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nflowbot = bot.cli:main\n")
    return names


def stage_debs(base: str, packages: list[str], debs: Path) -> None:
    """Download into ``debs`` the ``packages`` (and their dependencies) ``base`` lacks."""
    if shutil.which("apt-get") is None:
        raise StageError("apt-get is missing: staging the image's Debian packages needs "
                         "a Debian bookworm machine")
    status = subprocess.run(["docker", "run", "--rm", "--entrypoint", "cat", base,
                             "/var/lib/dpkg/status"], capture_output=True, check=False)
    if status.returncode != 0:
        raise StageError(f"cannot read {base}'s dpkg status (is it a Debian image? "
                         f"run ./dev test or python -m runner.offline_images first): "
                         f"{status.stderr.decode(errors='replace').strip()[-300:]}")
    (debs / "partial").mkdir(parents=True)
    with tempfile.NamedTemporaryFile(prefix="dpkg-status-") as handle:
        handle.write(status.stdout)
        handle.flush()
        command = ["apt-get", "-q", "-o", f"Dir::State::status={handle.name}",
                   "-o", f"Dir::Cache::archives={debs}", "-o", "Debug::NoLocking=1",
                   "--download-only", "--no-install-recommends", "-y", "install", *packages]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StageError(f"apt-get could not download {' '.join(packages)} "
                         f"(apt-get update first?): {done.stderr.strip()[-500:]}")
    shutil.rmtree(debs / "partial")
    for lock in debs.glob("lock"):
        lock.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", choices=sorted(PACKAGES))
    parser.add_argument("context", type=Path, help="an empty or missing directory")
    parser.add_argument("--base", default="python:3.11-slim", help="the image to start FROM")
    parser.add_argument("--source", default="HEAD",
                        help="flowbot's code: a git revision (default HEAD, the committed "
                             "tree) or 'worktree' (uncommitted edits included)")
    args = parser.parse_args(argv)
    context: Path = args.context
    context.mkdir(parents=True, exist_ok=True)
    try:
        stage_debs(args.base, PACKAGES[args.image], context / "debs")
        if args.image == "flowbot":
            names = stage_site(context / "site", args.source)
            shutil.copy2(ROOT / "Dockerfile", context / "Dockerfile")
            print(f"staged flowbot and {len(names)} dependencies in {context}")  # noqa: T201
        else:
            for name in ("Dockerfile", "entrypoint.sh"):
                shutil.copy2(HERE / "postgres" / name, context / name)
            print(f"staged PostgreSQL in {context}")  # noqa: T201
    except StageError as exc:
        print(f"stage_context: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
