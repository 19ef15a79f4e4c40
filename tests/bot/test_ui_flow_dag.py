"""The task graph's layered layout and its SVG (bot.web.dag_svg), over plain data."""

from __future__ import annotations

import re

from bot.web.dag_svg import NODE_H, NODE_W, layers, layout, render

DIAMOND = {"fetch": (), "lint": (), "test": ("fetch",), "build": ("fetch",),
           "ship": ("test", "build", "lint")}


def test_a_task_s_layer_is_its_longest_needs_path() -> None:
    assert layers(DIAMOND) == {"fetch": 0, "lint": 0, "test": 1, "build": 1, "ship": 2}
    assert layers({"a": (), "b": ("a",), "c": ("a", "b")}) == {"a": 0, "b": 1, "c": 2}


def test_boxes_never_overlap_and_columns_follow_layers() -> None:
    drawn = layout(DIAMOND)
    boxes = {n.task_id: n for n in drawn.nodes}
    assert boxes["fetch"].x == boxes["lint"].x < boxes["test"].x == boxes["build"].x \
        < boxes["ship"].x
    for a in drawn.nodes:
        for b in drawn.nodes:
            if a is not b:
                assert abs(a.x - b.x) >= NODE_W or abs(a.y - b.y) >= NODE_H
            assert a.x + NODE_W <= drawn.width and a.y + NODE_H <= drawn.height


def test_a_long_edge_runs_in_its_own_lane_not_through_a_box() -> None:
    drawn = layout({"a": (), "b": ("a",), "c": ("b", "a")})
    boxes = {n.task_id: n for n in drawn.nodes}
    long = next(e for e in drawn.edges if (e.source, e.target) == ("a", "c"))
    assert " L" in long.path  # straight through its waypoint in b's layer
    lane_y = [int(y) for y in re.findall(r"L\d+,(\d+)", long.path)]
    assert all(abs(y - (boxes["b"].y + NODE_H // 2)) >= NODE_H for y in lane_y)
    short = next(e for e in drawn.edges if (e.source, e.target) == ("a", "b"))
    assert " L" not in short.path


def test_a_cycle_or_unknown_need_never_loops() -> None:
    assert layers({"a": ("b",), "b": ("a",), "c": ("zz",)})["c"] == 0
    assert len(layout({"a": ("b",), "b": ("a",)}).nodes) == 2


def test_the_svg_escapes_names_and_colours_tasks_by_state() -> None:
    svg = str(render(layout({"<x>": (), "y": ("<x>",)}), states={"y": "failed"},
                     link=lambda task: f"#log-{task}"))
    assert "<x>" not in svg and "&lt;x&gt;" in svg
    assert 'class="dag-node st-failed" data-task="y"' in svg
    assert '<a href="#log-y">' in svg and svg.count('class="dag-edge"') == 1
    assert svg.startswith('<svg class="dag"') and 'viewBox="0 0 ' in svg


def test_no_tasks_is_an_empty_picture() -> None:
    drawn = layout({})
    assert drawn.nodes == () and drawn.edges == ()
