"""Which due slots of one schedule run and which are skipped: the catch-up policy.

Pure: given the first unclaimed slot, ``now`` and the trigger's policy, decide.
A slot no older than ``grace`` (:data:`ON_TIME_GRACE` unless the scheduler is
given another) is *on time*; older ones were *missed* (the scheduler was down
or paused). The grace is what lets a slot fire at all under ``none``: a tick
always comes a little after its slot, and a restart of a few seconds is not
downtime anyone means to skip. docs/flows.md states it to users. Policies:

* ``none``: run on-time slots only; every missed slot is skipped.
* ``latest``: run on-time slots; if there is none, run the most recent missed
  slot; the other missed slots are skipped.
* ``all``: run the most recent ``limit`` slots (on time or missed) in order; the
  older ones are skipped.

At most :data:`MAX_SLOTS` slots are looked at per decision; when more are due,
the oldest chunk is skipped (none of them can be among the ``limit`` ≤ 1000 most
recent) and the rest is left for the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from runner.model.flows import CatchUp
from runner.scheduling.cron import due_slots
from runner.scheduling.fires import SkipReason

MAX_SLOTS = 5000
ON_TIME_GRACE = timedelta(seconds=60)  # a slot reached at most this late runs under every policy
MAX_LIMIT = 1000  # the schema's maximum catchup_limit

_REASON = {
    CatchUp.NONE: SkipReason.CATCHUP_NONE,
    CatchUp.LATEST: SkipReason.CATCHUP_LATEST,
    CatchUp.ALL: SkipReason.CATCHUP_LIMIT,
}


@dataclass(frozen=True)
class Decision:
    """Slots to run, slots to skip (with why), and the schedule's new next fire."""

    fire: tuple[datetime, ...]
    skip: tuple[tuple[datetime, SkipReason], ...]
    next_fire_at: datetime | None
    last_slot: datetime  # the most recent slot decided about


def decide(
    expr: str, tz: str, first: datetime, now: datetime,
    policy: CatchUp, limit: int, grace: timedelta,
) -> Decision:
    """Decide the slots from ``first`` (due: ``first <= now``) up to ``now``."""
    slots, following = due_slots(expr, tz, first, now, MAX_SLOTS + 1)
    reason = _REASON[policy]
    if len(slots) > MAX_SLOTS:
        # far behind: skip an old chunk now, decide the rest on the next tick
        chunk = slots[: MAX_SLOTS - MAX_LIMIT]
        return Decision((), tuple((s, reason) for s in chunk), slots[len(chunk)], chunk[-1])
    missed = [s for s in slots if now - s > grace]
    on_time = [s for s in slots if now - s <= grace]
    if policy is CatchUp.ALL:
        run = slots[-limit:]
    elif policy is CatchUp.LATEST and not on_time:
        run = missed[-1:]
    else:
        run = on_time
    chosen = set(run)
    skipped = tuple((s, reason) for s in slots if s not in chosen)
    return Decision(tuple(run), skipped, following, slots[-1])
