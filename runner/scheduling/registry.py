"""The registry: the flows registered from each repository's default branch.

:func:`plan` is the pure diff between what is registered and what a commit
proposes (the bot shows it in the PR comment). :class:`Registry` applies it on
merge: one transaction, batched statements, schedules updated alongside
(through the :class:`runner.scheduling.schedule_store.ScheduleStore`), so 10,000 flows
sync in well under a second.

A flow whose file is invalid at the synced commit keeps its last valid version
(reported as *kept*); one bad file never unregisters the others; a deleted
file unregisters its flows.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from runner.clock import Clock
from runner.errors import DuplicateFlowId
from runner.model.flows import Flow, flow_from_data
from runner.scheduling.fires import as_utc
from runner.scheduling.registered import registered_flows as registered_flows  # re-exported
from runner.scheduling.schedule_store import ScheduleStore
from runner.scheduling.sql_schedule_store import SqlScheduleStore

log = logging.getLogger(__name__)

SUMMARY = "{added} added, {changed} changed, {removed} removed, {unchanged} unchanged"
KEPT_NOTE = "; kept last valid version of {kept} (invalid at this commit)"

@dataclass(frozen=True)
class Plan:
    """What registering a set of flows changes, by flow id (each sorted)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def plan(registered: Mapping[str, str], proposed: Sequence[Flow]) -> Plan:
    """Diff ``registered`` (flow id → digest) against the ``proposed`` flows.

    Raises :class:`DuplicateFlowId` when two proposed flows share an id.
    """
    by_id = _unique(proposed)
    added, changed, unchanged = [], [], []
    for flow_id, flow in by_id.items():
        digest = registered.get(flow_id)
        if digest is None:
            added.append(flow_id)
        elif digest != flow.digest:
            changed.append(flow_id)
        else:
            unchanged.append(flow_id)
    removed = [flow_id for flow_id in registered if flow_id not in by_id]
    return Plan(*(tuple(sorted(ids)) for ids in (added, changed, removed, unchanged)))


def _unique(flows: Sequence[Flow]) -> dict[str, Flow]:
    by_id: dict[str, Flow] = {}
    for flow in flows:
        if flow.id in by_id:
            raise DuplicateFlowId(flow.id, [by_id[flow.id].path, flow.path])
        by_id[flow.id] = flow
    return by_id


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`Registry.sync` did; ``kept`` flows are invalid at ``commit``."""

    repo: str
    commit: str
    plan: Plan
    kept: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the ``flowbot/sync`` status description."""
        p = self.plan
        text = SUMMARY.format(
            added=len(p.added), changed=len(p.changed),
            removed=len(p.removed), unchanged=len(p.unchanged),
        )
        return text + (KEPT_NOTE.format(kept=", ".join(self.kept)) if self.kept else "")


@dataclass(frozen=True)
class RegisteredFlow:
    """A flow as registered: its definition and where it came from."""

    flow: Flow
    path: str
    commit: str
    digest: str
    registered_at: datetime
    paused: bool


class Registry:
    """Registered flows per repository, stored in the database.

    ``wake`` (optional) is set after every sync that changed something, so a
    scheduler sleeping in the same process re-reads its next fire time.
    ``schedules`` is the store the flows' schedules are synced into (by default
    the SQL store on ``engine``).
    """

    def __init__(
        self, engine: Engine, clock: Clock, *, wake: threading.Event | None = None,
        schedules: ScheduleStore | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._wake = wake
        self._schedules = schedules if schedules is not None else SqlScheduleStore(engine, clock)

    def sync(
        self,
        repo: str,
        commit: str,
        flows: Sequence[Flow],
        invalid: Mapping[str, str] | None = None,
    ) -> SyncResult:
        """Register ``flows`` (the valid flows at ``commit``) as ``repo``'s flows.

        ``invalid`` maps each invalid file's path to the flow id it registered
        before (or to the path when unknown): such flows are kept, not removed.
        """
        now = self._clock.now()
        with self._engine.begin() as conn:
            current = _current(conn, repo)
            diff, kept = _keeping(plan({fid: row[0] for fid, row in current.items()}, flows),
                                  current, invalid or {})
            by_id = {flow.id: flow for flow in flows}
            paths = {fid: row[1] for fid, row in current.items()}
            _write(conn, repo, commit, now, diff, by_id, paths, kept)
            paused = frozenset(fid for fid, row in current.items() if row[2])
            self._schedules.sync(
                conn, repo, [by_id[f] for f in (*diff.added, *diff.changed)], diff.removed,
                now, paused,
            )
        result = SyncResult(repo, commit, diff, kept)
        log.info("registry synced: %s", result.summary(), extra={"repo": repo, "commit": commit})
        if diff.has_changes and self._wake is not None:
            self._wake.set()
        return result

    def list(self, repo: str) -> list[RegisteredFlow]:
        """Every flow registered for ``repo``, by id."""
        query = select(registered_flows).where(registered_flows.c.repo == repo)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(registered_flows.c.flow_id)).mappings().all()
        return [_registered(row) for row in rows]

    def get(self, repo: str, flow_id: str) -> RegisteredFlow | None:
        """The registered flow ``flow_id`` of ``repo``, or None."""
        query = select(registered_flows).where(
            registered_flows.c.repo == repo, registered_flows.c.flow_id == flow_id
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _registered(row)

    def digests(self, repo: str) -> dict[str, str]:
        """Flow id → digest of ``repo``'s registered flows (the input of :func:`plan`)."""
        with self._engine.connect() as conn:
            return {fid: row[0] for fid, row in _current(conn, repo).items()}


def _keeping(
    diff: Plan, current: Mapping[str, tuple[str, str, bool]], invalid: Mapping[str, str]
) -> tuple[Plan, tuple[str, ...]]:
    """``diff`` without removing the flows whose file is invalid at this commit
    (named in ``invalid`` by flow id or by path), and those kept flows."""
    kept = tuple(sorted(
        fid for fid in diff.removed
        if fid in invalid.values() or current[fid][1] in invalid
    ))
    return Plan(diff.added, diff.changed,
                tuple(f for f in diff.removed if f not in kept), diff.unchanged), kept


def _current(conn: Connection, repo: str) -> dict[str, tuple[str, str, bool]]:
    t = registered_flows.c
    query = select(t.flow_id, t.digest, t.path, t.paused).where(t.repo == repo)
    return {fid: (digest, path, bool(paused)) for fid, digest, path, paused in conn.execute(query)}


def _write(
    conn: Connection, repo: str, commit: str, now: datetime, diff: Plan,
    by_id: Mapping[str, Flow], paths: Mapping[str, str], kept: Sequence[str],
) -> None:
    t = registered_flows.c
    for chunk in _chunks(list(diff.removed)):
        conn.execute(delete(registered_flows).where(t.repo == repo, t.flow_id.in_(chunk)))
    if diff.added:
        conn.execute(insert(registered_flows), [
            {**_row(by_id[fid], commit), "repo": repo, "flow_id": fid,
             "registered_at": now, "paused": False}
            for fid in diff.added
        ])
    # unchanged flows follow the commit (one statement), so a scheduled run checks
    # out the latest default branch; kept flows stay at their last valid commit
    follow = update(registered_flows).where(t.repo == repo).values(commit_sha=commit)
    if kept:
        follow = follow.where(t.flow_id.not_in(list(kept)))
    conn.execute(follow)
    # changed flows get their new definition; renamed files their new path
    rewritten = [*diff.changed, *(f for f in diff.unchanged if by_id[f].path != paths[f])]
    if not rewritten:
        return  # nothing else to write
    new_at = bindparam("new_registered_at", type_=DateTime(timezone=True))
    conn.execute(
        update(registered_flows)
        .where(t.repo == bindparam("k_repo"), t.flow_id == bindparam("k_flow"))
        .values(registered_at=func.coalesce(new_at, t.registered_at)),
        [{**_row(by_id[fid], commit), "k_repo": repo, "k_flow": fid,
          "new_registered_at": now if fid in diff.changed else None} for fid in rewritten],
    )  # the other keys (path, commit_sha, digest, data) are SET by name


def _chunks(items: list[str], size: int = 2000) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _row(flow: Flow, commit: str) -> dict[str, Any]:
    return {
        "path": flow.path,
        "commit_sha": commit,
        "digest": flow.digest,
        "data": json.dumps(flow.data, sort_keys=True, default=str),
    }


def _registered(row: Any) -> RegisteredFlow:
    return RegisteredFlow(
        flow=flow_from_data(json.loads(row["data"]), row["path"]),
        path=row["path"],
        commit=row["commit_sha"],
        digest=row["digest"],
        registered_at=as_utc(row["registered_at"]),
        paused=bool(row["paused"]),
    )
