"""Real git repositories for tests: files committed in a fresh repository."""

from __future__ import annotations

from pathlib import Path

import git


def committed(source: Path, files: dict[str, bytes], message: str = "files") -> str:
    """Initialise a repository at ``source`` holding ``files``; the commit's sha."""
    repo = git.Repo.init(source)
    for name, content in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    repo.index.add(list(files))
    return repo.index.commit(message).hexsha
