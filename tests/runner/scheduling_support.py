"""Helpers shared by the registry, schedules and scheduler tests."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from runner.model.flows import Flow, flow_from_data
from runner.scheduling.fires import schedule_fires
from runner.scheduling.scheduler import Fire
from runner.scheduling.schedules import schedules

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_flow(flow_id: str, *triggers: dict[str, Any], description: str = "") -> Flow:
    data: dict[str, Any] = {
        "id": flow_id,
        "description": description,
        "tasks": [{"id": "main", "image": "busybox:latest", "commands": ["true"]}],
        "triggers": [{"type": "schedule", **t} for t in triggers],
    }
    return flow_from_data(data, f"flows/{flow_id}.yml")


class RecordingSink:
    """Counts every call per fire key; idempotent like the real sink must be."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fires: list[Fire] = []
        self.runs: dict[str, str] = {}
        self.fired = threading.Event()
        self._lock = threading.Lock()

    def fire(self, fire: Fire) -> str | None:
        with self._lock:
            self.calls[fire.key] += 1
            self.fires.append(fire)
            run_id = self.runs.setdefault(fire.key, f"run-{len(self.runs) + 1}")
        self.fired.set()
        return run_id


def fire_rows(engine: Engine, **where: Any) -> list[Any]:
    t = schedule_fires.c
    query = select(schedule_fires).order_by(t.slot_at, t.flow_id)
    for name, value in where.items():
        query = query.where(getattr(t, name) == value)
    with engine.connect() as conn:
        return list(conn.execute(query))


def schedule_row(engine: Engine, flow_id: str, trigger_id: str = "schedule") -> Any:
    t = schedules.c
    query = select(schedules).where(t.flow_id == flow_id, t.trigger_id == trigger_id)
    with engine.connect() as conn:
        return conn.execute(query).first()
