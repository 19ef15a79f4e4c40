"""A run's attempts on a timeline, as SVG drawn on the server (pure: no I/O, no
JavaScript).

One row per task (in the order given); per attempt two bars side by side:

- ``waiting``: from when the attempt could have started — the run's start for a
  task without needs, the end of its last need otherwise, the end of its previous
  attempt for a retry — to when it started (the store records no other "ready"
  time: :func:`bars` derives it from the attempt rows);
- ``running``: from its start to its end, or to ``now`` while it runs, with the
  CSS class of its outcome (``st-success``, ``st-failed`` …).

A time axis below, ticks at a round step (1 s … 1 h) relative to the run's start.
Each bar has a ``<title>`` tooltip (task, attempt, kind, duration). Every name is
escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from runner.state.records import AttemptRow

LABEL_W = 140  # the task names' column
PLOT_W = 560
ROW_H, BAR_H = 24, 14
AXIS_H = 22
PAD = 6
MAX_LABEL = 18
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
         43200, 86400)
MAX_TICKS = 8


@dataclass(frozen=True)
class Bar:
    """One attempt in time: ready (could start), started, ended (None: running)."""

    task_id: str
    attempt: int
    status: str
    ready: datetime
    started: datetime
    ended: datetime | None


@dataclass(frozen=True)
class Segment:
    task_id: str
    attempt: int
    kind: str  # "waiting" or "running"
    status: str
    x: float
    y: int
    width: float
    seconds: float


@dataclass(frozen=True)
class Chart:
    rows: tuple[tuple[str, int], ...]  # task id, y of its row's top
    segments: tuple[Segment, ...]
    ticks: tuple[tuple[float, str], ...]  # x, label
    width: int
    height: int


def bars(needs: Mapping[str, Sequence[str]], attempts: Sequence[AttemptRow],
         run_start: datetime) -> list[Bar]:
    """The bars of the attempts that started (an attempt row without a start is left
    out). A task's ready time is the latest end of its needs' last attempts (the
    run's start when it has none), a retry's the end of the attempt before."""
    by_task: dict[str, list[AttemptRow]] = {}
    for row in sorted(attempts, key=lambda a: (a.task_id, a.attempt)):
        if row.started_at is not None:
            by_task.setdefault(row.task_id, []).append(row)

    def last_end(task: str) -> datetime | None:
        rows = by_task.get(task)
        return rows[-1].finished_at if rows else None

    found: list[Bar] = []
    for task, rows in by_task.items():
        ends = [end for need in needs.get(task, ()) if (end := last_end(need)) is not None]
        ready = max([run_start, *ends])
        for row in rows:
            started = row.started_at
            assert started is not None  # filtered above
            found.append(Bar(task, row.attempt, str(row.status), min(ready, started),
                             started, row.finished_at))
            ready = row.finished_at or started
    return found


def _step(span: float) -> int:
    return next((s for s in STEPS if span / s <= MAX_TICKS), STEPS[-1])


def offset_text(seconds: int) -> str:
    """``0s``, ``45s``, ``2m``, ``1m30s``, ``1h``, ``2h15m``."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60}m" if rest // 60 else f"{hours}h"


def chart(tasks: Sequence[str], drawn: Sequence[Bar], origin: datetime,
          now: datetime) -> Chart:
    """Positions: ``origin`` (the run's start) at the left edge, the latest end (or
    ``now`` for a running attempt) at the right."""
    def at(moment: datetime) -> float:
        return (moment - origin).total_seconds()

    last = max([0.0, *(at(b.ended or now) for b in drawn)])
    span = max(last, 1.0)
    scale = PLOT_W / span

    def x(seconds: float) -> float:
        return round(LABEL_W + max(seconds, 0.0) * scale, 1)

    row_of = {task: PAD + index * ROW_H for index, task in enumerate(tasks)}
    segments: list[Segment] = []
    for bar in drawn:
        y = row_of.get(bar.task_id)
        if y is None:
            continue
        end = bar.ended or now
        for kind, begin, finish, status in (
                ("waiting", bar.ready, bar.started, "waiting"),
                ("running", bar.started, end, bar.status)):
            seconds = max((finish - begin).total_seconds(), 0.0)
            if kind == "waiting" and seconds <= 0:
                continue
            left = x(at(begin))
            segments.append(Segment(bar.task_id, bar.attempt, kind, status, left,
                                     y + (ROW_H - BAR_H) // 2,
                                     max(round(x(at(finish)) - left, 1), 1.0), seconds))
    step = _step(span)
    ticks = tuple((x(t), offset_text(t)) for t in range(0, int(span) + 1, step))
    height = 2 * PAD + len(tasks) * ROW_H + AXIS_H
    return Chart(tuple(row_of.items()), tuple(segments), ticks, LABEL_W + PLOT_W + PAD,
                 height)


def _label(task_id: str) -> str:
    return task_id if len(task_id) <= MAX_LABEL else task_id[:MAX_LABEL - 1] + "…"


def _segment(s: Segment, link: Callable[[str], str] | None) -> str:
    title = f"{s.task_id} attempt {s.attempt}: {s.kind} {s.seconds:.1f}s"
    if s.kind == "running":
        title += f" ({s.status})"
    rect = (f'<rect class="gantt-{s.kind} st-{escape(s.status)}" data-task="{escape(s.task_id)}" '
            f'data-attempt="{s.attempt}" x="{s.x}" y="{s.y}" width="{s.width}" '
            f'height="{BAR_H}" rx="3"><title>{escape(title)}</title></rect>')
    return f'<a href="{escape(link(s.task_id))}">{rect}</a>' if link else rect


def render(drawn: Chart, link: Callable[[str], str] | None = None,
           label: str = "timeline of attempts") -> Markup:
    """``drawn`` as an inline ``<svg>`` (scales down on narrow screens)."""
    axis_y = drawn.height - AXIS_H - PAD
    rows = "".join(
        f'<text class="gantt-task" x="{LABEL_W - 8}" y="{y + ROW_H // 2}" text-anchor="end" '
        f'dominant-baseline="central"><title>{escape(task)}</title>{escape(_label(task))}</text>'
        for task, y in drawn.rows)
    ticks = "".join(
        f'<line class="gantt-tick" x1="{x}" y1="{PAD}" x2="{x}" y2="{axis_y + 4}"/>'
        f'<text class="gantt-axis" x="{x}" y="{axis_y + 16}" text-anchor="middle">'
        f"{escape(text)}</text>" for x, text in drawn.ticks)
    bars_svg = "".join(_segment(s, link) for s in drawn.segments)
    return Markup(
        f'<svg class="gantt" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {drawn.width} {drawn.height}" width="{drawn.width}" '
        f'height="{drawn.height}" xmlns="http://www.w3.org/2000/svg">'
        f'{ticks}<line class="gantt-axis-line" x1="{LABEL_W}" y1="{axis_y}" '
        f'x2="{LABEL_W + PLOT_W}" y2="{axis_y}"/>{rows}{bars_svg}</svg>')
