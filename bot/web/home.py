"""``/``: the repositories a viewer may read and their flows — the last runs as
coloured marks, the next fire time, paused flows marked (server-rendered)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.services import Services
from bot.web.api import registered_repos
from bot.web.auth import Viewer
from bot.web.timefmt import exact, iso, relative
from runner.state.records import RunRecord

RECENT_RUNS = 10  # marks per flow


@dataclass(frozen=True)
class Mark:
    run_id: str
    status: str
    title: str


@dataclass(frozen=True)
class FlowLine:
    flow_id: str
    description: str
    paused: bool
    marks: list[Mark]
    next_fire: str | None  # relative
    next_fire_title: str | None  # exact, in the trigger's timezone and in UTC
    next_fire_iso: str | None  # UTC, for <time datetime> (shown in the browser's zone)


@dataclass(frozen=True)
class RepoBlock:
    repo: str
    flows: list[FlowLine]


def _mark(run: RunRecord, now: datetime) -> Mark:
    return Mark(run.id, str(run.status),
                f"{run.status} · {relative(run.created_at, now)} · {exact(run.created_at)}")


def _fire_title(at: datetime, zone: str) -> str:
    return exact(at) if zone == "UTC" else f"{exact(at, zone)} · {exact(at)}"


def _next_fires(services: Services, repo: str) -> dict[str, tuple[datetime, str]]:
    """Each flow's earliest coming fire over its triggers, with the trigger's timezone."""
    earliest: dict[str, tuple[datetime, str]] = {}
    for row in services.schedules.list(repo):
        if row.next_fire_at is None:
            continue  # paused or disabled
        known = earliest.get(row.flow_id)
        if known is None or row.next_fire_at < known[0]:
            earliest[row.flow_id] = (row.next_fire_at, row.timezone)
    return earliest


def repo_blocks(services: Services, viewer: Viewer) -> list[RepoBlock]:
    """What ``/`` shows ``viewer``: only the repositories they may read."""
    now = services.clock.now()
    blocks = []
    for repo in viewer.visible(registered_repos(services)):
        fires = _next_fires(services, repo)
        lines = []
        for registered in services.registry.list(repo):
            flow = registered.flow
            recent = services.store.list_runs(repo=repo, flow_id=flow.id, limit=RECENT_RUNS)
            fire = fires.get(flow.id)
            lines.append(FlowLine(
                flow.id, flow.description or "", registered.paused,
                [_mark(run, now) for run in reversed(recent)],
                relative(fire[0], now) if fire else None,
                _fire_title(*fire) if fire else None, iso(fire[0]) if fire else None))
        blocks.append(RepoBlock(repo, lines))
    return blocks
