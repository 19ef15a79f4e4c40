"""A flow's task graph as SVG, laid out on the server (pure: no I/O, no JavaScript).

A small layered layout, left to right: a task's layer (column) is the length of
the longest ``needs`` path leading to it; within a column tasks are ordered by
the mean row of what they need (declaration order breaks ties), which keeps
most edges short and uncrossed for the graphs flows have. Edges are cubic
curves from a task's right side to the next task's left side.

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


def _columns(needs: Mapping[str, Sequence[str]], layer_of: dict[str, int]) -> list[list[str]]:
    """Tasks per layer, each ordered by the mean row of its needs (barycentre)."""
    order = {task: i for i, task in enumerate(needs)}
    columns: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for index, _ in enumerate(columns):
        members = [t for t in needs if layer_of[t] == index]

        def key(task: str) -> tuple[float, int]:
            above = [row[n] for n in needs[task] if n in row]
            return (sum(above) / len(above) if above else order[task], order[task])

        columns[index] = sorted(members, key=key)
        row.update({task: float(i) for i, task in enumerate(columns[index])})
    return columns


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
    x2, y2 = b.x, b.y + NODE_H // 2
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def layout(needs: Mapping[str, Sequence[str]]) -> Layout:
    """Positions for tasks given as ``{task_id: needs}`` in declaration order."""
    layer_of = layers(needs)
    columns = _columns(needs, layer_of)
    tallest = max((len(c) for c in columns), default=0)
    nodes: dict[str, Node] = {}
    for index, column in enumerate(columns):
        offset = (tallest - len(column)) * (NODE_H + GAP_Y) // 2  # centre short columns
        for row, task in enumerate(column):
            nodes[task] = Node(task, index, row, PAD + index * (NODE_W + GAP_X),
                               PAD + offset + row * (NODE_H + GAP_Y))
    edges = tuple(Edge(source, task, _curve(nodes[source], nodes[task]))
                  for task in needs for source in needs[task]
                  if source in nodes and source != task)
    width = 2 * PAD + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    height = 2 * PAD + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    return Layout(tuple(nodes.values()), edges, width, height)


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
