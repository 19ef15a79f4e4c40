"""Parsing what a task wrote to ``$FLOWBOT_OUTPUT``: ``key=value`` lines, and
GitHub's multi-line form ``key<<DELIMITER`` ... ``DELIMITER``.

:func:`parse_outputs` is pure; :func:`read_outputs` reads the file with a bound
(:data:`MAX_OUTPUT_BYTES`), never more, whatever size the task made it.
"""

from __future__ import annotations

import re
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_OUTPUT_BYTES = 1024 * 1024  # a task's outputs are data for templates, not artifacts
OUTPUTS_CUT = "outputs past the first {size} of $FLOWBOT_OUTPUT ignored"


def read_outputs(path: Path, limit: int = MAX_OUTPUT_BYTES) -> tuple[dict[str, str], bool]:
    """The outputs in the first ``limit`` bytes of ``path`` and whether there was more.

    Past the limit the line cut in two is dropped too, so no value is silently
    shortened. A missing file is no outputs.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError:
        return {}, False  # the task never wrote any
    cut = len(raw) > limit
    if cut:
        raw = raw[: raw.rfind(b"\n", 0, limit) + 1]  # whole lines only
    return parse_outputs(raw.decode(errors="replace")), cut


def parse_outputs(text: str) -> dict[str, str]:
    """Outputs by key; a later line wins. Lines that are not outputs are ignored."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        key, sep, value = line.partition("=")
        heredoc_key, marker, delimiter = line.partition("<<")
        if marker and (not sep or len(heredoc_key) < len(key)) and _KEY.match(heredoc_key):
            body, i = _until(lines, i, delimiter)
            values[heredoc_key] = body
        elif sep and _KEY.match(key):
            values[key] = value
    return values


def _until(lines: list[str], i: int, delimiter: str) -> tuple[str, int]:
    """The lines from ``i`` up to ``delimiter`` (or the end), and where to go on."""
    body = []
    while i < len(lines) and lines[i] != delimiter:
        body.append(lines[i])
        i += 1
    return "\n".join(body), i + 1
