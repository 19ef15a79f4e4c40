"""The flow model: defaults filled in, durations, retries, digests."""

import dataclasses
import random
import sys
from pathlib import Path

import pytest

from runner.loading.yamlload import load
from runner.model.flows import (
    ConcurrencyPolicy,
    Flow,
    InputSpec,
    PullPolicy,
    ScheduleTrigger,
    Task,
    flow_from_data,
    parse_duration,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from validate import flow_text  # noqa: E402  -- the benchmark's generated flows


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("2h", 7200.0), ("1h0m5s", 3605.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1d", "m", "10 m", "1m1h"])
def test_malformed_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_defaults_are_filled_in() -> None:
    data = {"id": "f", "tasks": [{"id": "t", "image": "busybox", "commands": ["true"]}]}
    flow = flow_from_data(data)
    task = flow.tasks[0]
    assert (task.shell, task.workdir, task.network, task.pull) == (
        "sh", "/workspace", "bridge", PullPolicy.IF_NOT_PRESENT)
    assert task.retry.limit == 0 and flow.concurrency is None and flow.notify.status


def test_retries_and_backoff() -> None:
    flow = flow_from_data({"id": "f", "concurrency": {"limit": 2, "policy": "skip"}, "tasks": [
        {"id": "a", "image": "busybox", "script": "true", "retries": 3},
        {"id": "b", "image": "busybox", "script": "true",
         "retries": {"limit": 2, "delay": "10s", "backoff": 2}},
    ]})
    assert flow.task("a").retry.limit == 3
    retry = flow.task("b").retry
    assert [retry.delay_before(n) for n in (1, 2)] == [10.0, 20.0]
    assert flow.concurrency is not None and flow.concurrency.policy is ConcurrencyPolicy.SKIP


def test_digest_tells_changed_from_unchanged() -> None:
    data = {"id": "f", "tasks": [{"id": "t", "image": "busybox", "commands": ["true"]}]}
    same = {"tasks": [{"commands": ["true"], "image": "busybox", "id": "t"}], "id": "f"}
    changed = {"id": "f", "tasks": [{"id": "t", "image": "busybox", "commands": ["false"]}]}
    assert flow_from_data(data).digest == flow_from_data(same).digest
    assert flow_from_data(data).digest != flow_from_data(changed).digest


def test_flows_built_from_data_equal_the_constructors_and_set_every_field() -> None:
    """flow_from_data skips the frozen dataclasses' __init__ for speed: it must still
    give every field, and the same objects the constructors give."""
    rng = random.Random(3)
    kinds: set[type] = set()
    for n in range(20):
        flow = flow_from_data(load(flow_text(n, rng)).data, f"f{n}.yml")
        made = [flow, *flow.tasks, *flow.errors, *flow.inputs.values(), *flow.triggers]
        kinds.update(type(o) for o in made)
        for obj in made:
            names = {f.name for f in dataclasses.fields(obj)}
            assert set(vars(obj)) == names, type(obj).__name__
            assert type(obj)(**{name: getattr(obj, name) for name in names}) == obj
        with pytest.raises(dataclasses.FrozenInstanceError):
            flow.tasks[0].id = "changed"  # type: ignore[misc]
    assert kinds == {Flow, Task, InputSpec, ScheduleTrigger}


POOLED = {"id": "f", "pool": "gpu", "tasks": [
    {"id": "train", "image": "busybox", "commands": ["true"]},
    {"id": "report", "image": "busybox", "commands": ["true"], "pool": "default"},
], "errors": [{"id": "page", "image": "busybox", "commands": ["true"]}]}


def test_a_task_runs_in_its_own_pool_else_the_flows_else_the_default() -> None:
    flow = flow_from_data(POOLED)
    assert flow.pool == "gpu"
    assert [t.pool for t in (*flow.tasks, *flow.errors)] == ["gpu", "default", "gpu"]
    plain = flow_from_data({"id": "f", "tasks": [{"id": "t", "image": "b", "script": "true"}]})
    assert (plain.pool, plain.tasks[0].pool) == ("default", "default")
