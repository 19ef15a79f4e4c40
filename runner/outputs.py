"""Parsing what a task wrote to ``$FLOWBOT_OUTPUT``: ``key=value`` lines, and
GitHub's multi-line form ``key<<DELIMITER`` ... ``DELIMITER``. Pure."""

from __future__ import annotations

import re

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_OUTPUT_BYTES = 1024 * 1024  # a task's outputs are data for templates, not artifacts


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
