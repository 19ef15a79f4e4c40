"""The registry: the pure plan, and syncs against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from scheduling_support import T0, make_flow
from sqlalchemy.engine import Engine

from runner.errors import DuplicateFlowId
from runner.model.flows import flow_from_data
from runner.scheduling.registry import Plan, Registry, plan
from tests.clock import FakeClock


def test_plan_tells_added_changed_removed_and_unchanged() -> None:
    same, edited, new = make_flow("same"), make_flow("edited"), make_flow("new")
    registered = {"same": same.digest, "edited": "old-digest", "gone": "x"}
    assert plan(registered, [new, edited, same]) == Plan(
        added=("new",), changed=("edited",), removed=("gone",), unchanged=("same",)
    )


def test_plan_refuses_two_files_with_one_flow_id() -> None:
    with pytest.raises(DuplicateFlowId, match='"twice"'):
        plan({}, [make_flow("twice"), make_flow("twice")])


def test_sync_registers_and_rebuilds_flows(db_engine: Engine) -> None:
    registry = Registry(db_engine, FakeClock(T0))
    flow = make_flow("nightly", {"cron": "0 3 * * *", "timezone": "Europe/Berlin"})

    result = registry.sync("acme/data", "c1", [flow])

    assert result.plan.added == ("nightly",)
    stored = registry.get("acme/data", "nightly")
    assert stored is not None
    assert stored.flow == flow and stored.digest == flow.digest
    assert (stored.commit, stored.path, stored.paused) == ("c1", "flows/nightly.yml", False)
    assert stored.registered_at == T0
    assert registry.get("acme/data", "other") is None
    assert registry.list("other/repo") == []


def test_unchanged_resync_follows_the_commit_and_keeps_registration_time(
    db_engine: Engine,
) -> None:
    clock = FakeClock(T0)
    registry = Registry(db_engine, clock)
    registry.sync("acme/data", "c1", [make_flow("a"), make_flow("b")])
    clock.advance(600)

    result = registry.sync("acme/data", "c2", [make_flow("a"), make_flow("b", description="new")])

    assert result.plan == Plan(changed=("b",), unchanged=("a",))
    a, b = registry.list("acme/data")
    assert (a.commit, a.registered_at) == ("c2", T0)
    assert (b.commit, b.registered_at, b.flow.description) == ("c2", clock.now(), "new")


def test_deleted_file_unregisters_and_invalid_file_keeps_last_valid_version(
    db_engine: Engine,
) -> None:
    registry = Registry(db_engine, FakeClock(T0))
    registry.sync("acme/data", "c1", [make_flow("a"), make_flow("b"), make_flow("c")])

    # b's file is broken at c2 (known by flow id), c's file was deleted
    result = registry.sync("acme/data", "c2", [make_flow("a")], {"flows/b.yml": "b"})

    assert result.kept == ("b",)
    assert result.plan == Plan(removed=("c",), unchanged=("a",))
    assert "kept last valid version of b" in result.summary()
    assert [f.flow.id for f in registry.list("acme/data")] == ["a", "b"]
    assert registry.get("acme/data", "b").commit == "c1"  # type: ignore[union-attr]


def test_invalid_file_known_only_by_path_keeps_its_flow(db_engine: Engine) -> None:
    registry = Registry(db_engine, FakeClock(T0))
    registry.sync("acme/data", "c1", [make_flow("a")])

    result = registry.sync("acme/data", "c2", [], {"flows/a.yml": "flows/a.yml"})

    assert result.kept == ("a",) and result.plan.removed == ()


def test_repositories_are_independent(db_engine: Engine) -> None:
    registry = Registry(db_engine, FakeClock(T0))
    registry.sync("acme/one", "c1", [make_flow("a")])
    registry.sync("acme/two", "c1", [make_flow("a")])

    registry.sync("acme/one", "c2", [])

    assert registry.list("acme/one") == []
    assert [f.flow.id for f in registry.list("acme/two")] == ["a"]


def test_sync_of_thousands_of_flows_in_batches(sqlite_engine: Engine) -> None:
    registry = Registry(sqlite_engine, FakeClock(T0))
    flows = [make_flow(f"f{i:05}", {"cron": f"{i % 60} * * * *"}) for i in range(4500)]

    first = registry.sync("acme/big", "c1", flows)
    again = registry.sync("acme/big", "c2", flows[:4000])

    assert len(first.plan.added) == 4500
    assert (len(again.plan.unchanged), len(again.plan.removed)) == (4000, 500)
    assert len(registry.digests("acme/big")) == 4000


def test_a_renamed_file_with_an_unchanged_flow_follows_the_new_path(db_engine: Engine) -> None:
    registry = Registry(db_engine, FakeClock(T0))
    registry.sync("acme/data", "c1", [make_flow("a"), make_flow("b")])
    moved = flow_from_data(make_flow("a").data, "flows/renamed.yml")

    result = registry.sync("acme/data", "c2", [moved, make_flow("b")])

    assert result.plan == Plan(unchanged=("a", "b"))
    stored = registry.get("acme/data", "a")
    assert stored is not None and (stored.path, stored.commit) == ("flows/renamed.yml", "c2")
    assert stored.flow.path == "flows/renamed.yml"
