"""A flow's task graph as SVG, laid out on the server (pure: no I/O, no JavaScript).

A small layered layout, left to right: a task's layer (column) is the length of
the longest ``needs`` path leading to it. An edge that spans several layers gets
a waypoint in each layer it crosses, which takes a row there like a task, so it
never runs through the boxes between. Within a column tasks and waypoints are
ordered by the mean row of what they follow (declaration order breaks ties),
which keeps most edges short and uncrossed for the graphs flows have. Edges are
cubic curves from a box's right side to the next one's left side.

:func:`layout` computes positions; :func:`render` draws them, each task with a
CSS class of its state when ``states`` is given (the run page colours tasks by
state) and a link when ``link`` is given. Every name is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

NODE_W, NODE_H = 150, 34
GAP_X, GAP_Y = 56, 14
PAD = 8
MAX_LABEL = 18  # characters shown in a box; the whole id is in its tooltip


@dataclass(frozen=True)
class Node:
    task_id: str
    layer: int
    row: int
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str  # the SVG path's ``d``


@dataclass(frozen=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int


def layers(needs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each task's layer: the longest ``needs`` path to it (unknown needs ignored;
    a cycle, which validation refuses, is cut where it closes)."""
    found: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(task: str) -> int:
        if task in found:
            return found[task]
        if task in visiting:
            return 0  # a cycle: never registered, but never loop either
        visiting.add(task)
        up = [depth(n) + 1 for n in needs[task] if n in needs and n != task]
        visiting.discard(task)
        found[task] = max(up, default=0)
        return found[task]

    for task in needs:
        depth(task)
    return found


Slots = dict[str, list[str]]  # a column member (task or waypoint) -> the members it follows


def _waypoints(needs: Mapping[str, Sequence[str]],
               layer_of: dict[str, int]) -> tuple[Slots, dict[tuple[str, str], list[str]]]:
    """Every member of the columns with what it follows: the tasks, plus one waypoint
    per layer an edge crosses (so a long edge gets its own lane instead of running
    through the boxes between), and each edge's waypoints in order."""
    slots: dict[str, list[str]] = {task: [] for task in needs}
    lanes: dict[tuple[str, str], list[str]] = {}
    for task in needs:
        for source in dict.fromkeys(needs[task]):
            if source not in needs or source == task:
                continue  # unknown or itself: validation refuses both
            previous, lane = source, []
            for layer in range(layer_of[source] + 1, layer_of[task]):
                point = f"\0{source}\0{task}\0{layer}"
                layer_of[point] = layer
                slots[point] = [previous]
                previous = point
                lane.append(point)
            slots[task].append(previous)
            lanes[(source, task)] = lane
    return slots, lanes


def _columns(slots: Slots, layer_of: dict[str, int]) -> list[list[str]]:
    """Members per layer, each ordered by the mean row of what it follows (barycentre)."""
    order = {member: i for i, member in enumerate(slots)}
    columns: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for index, _ in enumerate(columns):
        def key(member: str) -> tuple[float, int]:
            above = [row[n] for n in slots[member] if n in row]
            return (sum(above) / len(above) if above else order[member], order[member])

        columns[index] = sorted((m for m in slots if layer_of[m] == index), key=key)
        row.update({member: float(i) for i, member in enumerate(columns[index])})
    return columns


def _path(points: list[tuple[int, int]]) -> str:
    """Curves from each box's right side to the next one's left side, straight
    through the waypoints' lanes."""
    x, y = points[0]
    d = [f"M{x + NODE_W},{y}"]
    for index, (nx, ny) in enumerate(points[1:], start=1):
        mid = (x + NODE_W + nx) // 2
        d.append(f"C{mid},{y} {mid},{ny} {nx},{ny}")
        if index < len(points) - 1:
            d.append(f"L{nx + NODE_W},{ny}")  # through a waypoint
        x, y = nx, ny
    return " ".join(d)


def layout(needs: Mapping[str, Sequence[str]]) -> Layout:
    """Positions for tasks given as ``{task_id: needs}`` in declaration order."""
    layer_of = layers(needs)
    slots, lanes = _waypoints(needs, layer_of)
    columns = _columns(slots, layer_of)
    tallest = max((len(c) for c in columns), default=0)
    at: dict[str, tuple[int, int]] = {}  # member -> (x, y of its middle)
    for index, column in enumerate(columns):
        offset = (tallest - len(column)) * (NODE_H + GAP_Y) // 2  # centre short columns
        for row, member in enumerate(column):
            at[member] = (PAD + index * (NODE_W + GAP_X),
                          PAD + offset + row * (NODE_H + GAP_Y) + NODE_H // 2)
    nodes = tuple(Node(task, layer_of[task], columns[layer_of[task]].index(task),
                       at[task][0], at[task][1] - NODE_H // 2) for task in needs)
    edges = tuple(Edge(source, target,
                       _path([at[source], *(at[point] for point in lane), at[target]]))
                  for (source, target), lane in lanes.items())
    width = 2 * PAD + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    height = 2 * PAD + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    return Layout(nodes, edges, width, height)


def _label(task_id: str) -> str:
    return task_id if len(task_id) <= MAX_LABEL else task_id[:MAX_LABEL - 1] + "…"


def _node(node: Node, state: str | None, href: str | None) -> str:
    cls = f"dag-node st-{escape(state)}" if state else "dag-node"
    title = f"{node.task_id}: {state}" if state else node.task_id
    box = (f'<g class="{cls}" data-task="{escape(node.task_id)}">'
           f"<title>{escape(title)}</title>"
           f'<rect x="{node.x}" y="{node.y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
           f'<text x="{node.x + NODE_W // 2}" y="{node.y + NODE_H // 2}" '
           f'text-anchor="middle" dominant-baseline="central">{escape(_label(node.task_id))}'
           "</text></g>")
    return f'<a href="{escape(href)}">{box}</a>' if href else box


def render(drawn: Layout, states: Mapping[str, str] | None = None,
           link: Callable[[str], str] | None = None, label: str = "task graph") -> Markup:
    """``drawn`` as an inline ``<svg>`` element (scales down on narrow screens)."""
    states = states or {}
    edges = "".join(f'<path class="dag-edge" data-from="{escape(e.source)}" '
                    f'data-to="{escape(e.target)}" d="{e.path}"/>' for e in drawn.edges)
    nodes = "".join(_node(n, states.get(n.task_id), link(n.task_id) if link else None)
                    for n in drawn.nodes)
    return Markup(
        f'<svg class="dag" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {drawn.width} {drawn.height}" width="{drawn.width}" '
        f'height="{drawn.height}" xmlns="http://www.w3.org/2000/svg">'
        f"{edges}{nodes}</svg>")
