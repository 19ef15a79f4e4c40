"""Vendor the part of GitHub's REST OpenAPI description that flowbot uses.

Reads the full description (default ``../shared/github-openapi.json.gz`` beside
the clone), keeps the operations listed in :data:`OPERATIONS` and every
component they reference (transitively), and writes
``tests/fakegithub/github-openapi-subset.json.gz``. Tests read only the subset.

Run after adding an endpoint to the fake server::

    .venv/bin/python tests/fakegithub/vendor.py [path/to/github-openapi.json.gz]
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SUBSET = HERE / "github-openapi-subset.json.gz"
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "github-openapi.json.gz"

# (method, path template) of every operation the fake server implements.
OPERATIONS: list[tuple[str, str]] = [
    ("get", "/rate_limit"),
    ("get", "/user"),
    ("get", "/app"),
    ("get", "/app/installations"),
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/statuses"),
    ("get", "/repos/{owner}/{repo}/issues"),
    ("post", "/repos/{owner}/{repo}/issues"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("patch", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("get", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"),
    ("post", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("get", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
]

_DROP_KEYS = ("examples", "example")


def _refs(node: Any) -> set[str]:
    """Every ``$ref`` string anywhere under ``node``."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _lookup(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _strip(node: Any) -> Any:
    """Drop examples: they are large and never used for checking."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in _DROP_KEYS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def subset(spec: dict[str, Any], operations: list[tuple[str, str]]) -> dict[str, Any]:
    """The spec reduced to ``operations`` and the components they reach."""
    paths: dict[str, dict[str, Any]] = {}
    for method, template in operations:
        item = spec["paths"][template]
        kept = paths.setdefault(template, {})
        kept[method] = _strip(item[method])
        if "parameters" in item:
            kept["parameters"] = _strip(item["parameters"])
    components: dict[str, dict[str, Any]] = {}
    pending = sorted(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        target = _strip(_lookup(spec, ref))
        components.setdefault(kind, {})[name] = target
        pending.extend(sorted(_refs(target) - seen))
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "paths": paths,
        "components": {kind: dict(sorted(v.items())) for kind, v in sorted(components.items())},
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        spec = json.load(handle)
    result = subset(spec, OPERATIONS)
    data = json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
    # mtime=0 keeps the file byte-identical across runs of the script.
    SUBSET.write_bytes(gzip.compress(data, mtime=0))
    print(f"wrote {SUBSET} ({len(result['paths'])} paths, {len(data)} bytes of JSON)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
