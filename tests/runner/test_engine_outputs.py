"""$FLOWBOT_OUTPUT on the real Docker engine: a huge file is read only up to
the limit (never whole), and the attempt says the rest was ignored."""

from __future__ import annotations

import tracemalloc

import pytest
from enginekit import Kit, task

from runner.state.records import Status

pytestmark = pytest.mark.docker


def test_a_huge_output_file_is_read_with_a_bound_and_noted(kit: Kit) -> None:
    tracemalloc.start()
    try:
        run = kit.run({"id": "huge", "tasks": [task(
            "t", 'echo "count=42" >> "$FLOWBOT_OUTPUT"',
            'truncate -s 300M "$FLOWBOT_OUTPUT"')]})  # sparse: no disk used
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.status is Status.SUCCESS, run.error
    assert peak < 32 * 1024 * 1024  # the file was 300 MiB
    assert kit.store.outputs(run.id)["t"] == {"count": "42"}
    assert kit.store.attempts(run.id, "t")[0].reason == (
        "outputs past the first 1 MiB of $FLOWBOT_OUTPUT ignored")
