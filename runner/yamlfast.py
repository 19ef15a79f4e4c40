"""The fast path of :mod:`runner.yamlload`: libyaml's composer, walked once.

libyaml (through PyYAML's C ``CParser``) builds the node tree with start marks
in C; this module walks it once in Python to produce exactly what the
event-by-event builder in :mod:`runner.yamlload` produces for an ordinary
flow file: data, positions, block styles, and the non-fatal problems
(duplicate keys, YAML 1.1 scalars, non-text keys).

Anything out of the ordinary makes :func:`build` give up (return None) so
that the slower builder produces its exact, positioned message: parse errors,
several or no documents, explicit tags, anchors and aliases, complex keys,
deep nesting, a root that is not a mapping. Anchors are excluded up front
(``&`` in the text): the composer forgets them, and an alias needs one.
"""

from __future__ import annotations

import gc
from typing import Any

import yaml
from yaml.events import (
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from runner import yamlryml, yamlscalars

_CParser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)

DUPLICATE_KEY = 'duplicate key "{key}" (first defined on line {line}); a key may appear once'
NON_TEXT_KEY = 'unquoted key `{text}` is read as {what}; keys must be text, quote it: "{text}":'

_KINDS: dict[type, str] = {
    bool: "a boolean", int: "a number", float: "a number", type(None): "null"
}
# Plain scalars starting with anything else are text in YAML 1.1 and 1.2 alike.
_MAYBE_TYPED = frozenset("0123456789+-.~yYnNoOtTfF")
# What an untagged (or "!"-tagged) node's tag is: never a real tag, which is text.
_UNTAGGED = None
_BLOCK = ("|", ">")

Path = tuple[str | int, ...]
Pos = tuple[int, int]


class _GiveUp(Exception):
    """Something the event builder reports better; let it."""


class _Composer(_CParser or object):  # type: ignore[misc]
    """libyaml's composer with no implicit resolution: every untagged node has tag None,
    plain scalars stay text with ``style == ''`` (resolved by :mod:`runner.yamlscalars`)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> None:
        return _UNTAGGED

    def descend_resolver(self, parent: Any, index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class Result:
    """What the walk produced: data and problems now, positions when first asked for.

    ``root`` is the composed node tree. A file loaded by :mod:`runner.yamlryml`
    has none: the first few positions asked for are found by reading libyaml's
    events only as far as each one (most files are reported on at one place, if
    at all), and the tree is composed if more are wanted."""

    __slots__ = ("_found", "_root", "data", "problems", "text")

    def __init__(self, root: Any, text: str = "") -> None:
        self.data: dict[str, Any] = {}
        self.problems: list[tuple[int, int, str]] = []
        self._root = root
        self.text = text
        self._found: dict[Path, Located] = {}

    @property
    def root(self) -> Any:
        if self._root is None:
            parser = _Composer(self.text)
            try:
                self._root = parser.get_single_node()
            finally:
                parser.dispose()
        return self._root

    def positions(self) -> tuple[dict[Path, Pos], dict[Path, Pos], dict[Path, str]]:
        """Where each value starts, where each key is, and the block scalars' styles,
        by path (a second walk, only needed when something is reported)."""
        located = _Positions()
        located.node(self.root, ())
        return located.values, located.keys, located.blocks

    def locate(self, path: Path) -> Located:
        """What ``positions()`` holds for ``path``, without a map of every node:
        where the value starts (or its nearest ancestor's, if ``path`` goes
        further than the file), where its key is (None for a list item, the root
        or a path not in the file) and its block style. Duplicate keys resolve
        to their first occurrence, as in ``positions()``."""
        found = self._found.get(path)
        if found is None:
            if self._root is None and len(self._found) < _EVENT_LOOKUPS:
                found = _locate_in_events(self.text, path)
            else:
                found = _locate_in_tree(self.root, path)
            self._found[path] = found
        return found


Located = tuple[Pos, Pos | None, str | None]
# Past this many positions in one file, composing its tree once costs less.
_EVENT_LOOKUPS = 3


def _located(mark: Any, key_mark: Any, style: str | None, found: bool) -> Located:
    key = (key_mark.line + 1, key_mark.column + 1) if found and key_mark is not None else None
    return (mark.line + 1, mark.column + 1), key, style if found and style in _BLOCK else None


def _locate_in_tree(node: Any, path: Path) -> Located:
    key_mark, found = None, True
    for part in path:
        kind = type(node)
        if kind is MappingNode and type(part) is str:
            for key_node, value_node in node.value:
                if key_node.value == part:
                    node, key_mark = value_node, key_node.start_mark
                    break
            else:
                found = False
        elif kind is SequenceNode and isinstance(part, int) and 0 <= part < len(node.value):
            node, key_mark = node.value[part], None
        else:
            found = False
        if not found:
            break
    style = node.style if type(node) is ScalarNode else None
    return _located(node.start_mark, key_mark, style, found)


def _locate_in_events(text: str, path: Path) -> Located:
    """:func:`_locate_in_tree` over libyaml's events, stopping at ``path``'s node."""
    parser = _Composer(text)
    try:
        event = parser.get_event()
        while type(event) in (StreamStartEvent, DocumentStartEvent):
            event = parser.get_event()
        key_mark, found = None, True
        for part in path:
            kind = type(event)
            if kind is MappingStartEvent and type(part) is str:
                found = False
                while type(key := parser.get_event()) is not MappingEndEvent:
                    value = parser.get_event() if _skipped(parser, key) else None
                    if value is None:  # a complex key: never equal to a path part
                        _skipped(parser, parser.get_event())
                    elif key.value == part:
                        event, key_mark, found = value, key.start_mark, True
                        break
                    else:
                        _skipped(parser, value)
            elif kind is SequenceStartEvent and isinstance(part, int) and part >= 0:
                found = False
                index = 0
                while type(item := parser.get_event()) is not SequenceEndEvent:
                    if index == part:
                        event, key_mark, found = item, None, True
                        break
                    _skipped(parser, item)
                    index += 1
            else:
                found = False
            if not found:
                break
        style = event.style if type(event) is ScalarEvent else None
        return _located(event.start_mark, key_mark, style, found)
    finally:
        parser.dispose()


def _skipped(parser: Any, event: Any) -> bool:
    """Read past the node ``event`` starts; True if it was a scalar."""
    if type(event) is ScalarEvent:
        return True
    depth = 1
    while depth:
        kind = type(parser.get_event())
        if kind is MappingStartEvent or kind is SequenceStartEvent:
            depth += 1
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            depth -= 1
    return False


def build(text: str, max_depth: int) -> Result | None:
    """The loaded file, or None when the event builder must handle it."""
    if _CParser is None:
        return None  # no libyaml: the pure-Python event builder reads everything
    with collector_paused():
        data = yamlryml.load(text, max_depth)  # most files; refuses anchors itself
        if data is not None:
            result = Result(None, text)
            result.data = data
            return result
        if "&" in text:
            return None  # maybe anchors/aliases, which the composer forgets: the builder
        return _composed(text, max_depth)


def collector_paused() -> CollectorPause:
    """Pause the cycle collector (re-enabling it only if it was on). Loading and
    checking a flow allocates thousands of short-lived, acyclic objects that are
    freed by reference counting; left on, the collector keeps rescanning
    everything the process holds (~15-20% of validation time). Cycles made
    meanwhile are not lost, only collected after."""
    return CollectorPause()


class CollectorPause:
    """The context manager :func:`collector_paused` returns (a class: entered twice
    per validated file, where a generator-based one costs a few microseconds)."""

    __slots__ = ("_was_enabled",)

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        if self._was_enabled:
            gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self._was_enabled:
            gc.enable()


def _composed(text: str, max_depth: int) -> Result | None:
    parser = _Composer(text)
    try:
        root = parser.get_single_node()
    except Exception:  # any parse problem: the builder words it exactly
        return None
    finally:
        parser.dispose()
    if type(root) is not MappingNode or root.tag is not _UNTAGGED:
        return None  # empty, a list or a scalar at the root: the builder says which
    result = Result(root)
    try:
        result.data = _Walk(result, max_depth).node(root, 1)
    except _GiveUp:
        return None
    return result


class _Walk:
    """Data and problems in one recursive pass; scalars (most nodes) inline."""

    def __init__(self, result: Result, max_depth: int) -> None:
        self.problems = result.problems
        self.max_depth = max_depth

    def node(self, node: Any, depth: int) -> Any:
        if node.tag is not _UNTAGGED:
            raise _GiveUp
        kind = type(node)
        if kind is ScalarNode:
            return self.scalar(node)
        if depth > self.max_depth:
            raise _GiveUp
        if kind is SequenceNode:
            return self.sequence(node, depth)
        return self.mapping(node, depth)

    def scalar(self, node: Any) -> Any:
        text: str = node.value
        if node.style or (text and text[0] not in _MAYBE_TYPED):
            return text  # quoted, block, or a word: always text
        value, problem = yamlscalars.resolve(text)
        if problem:
            mark = node.start_mark
            self.problems.append((mark.line + 1, mark.column + 1, problem))
        return value

    def sequence(self, node: Any, depth: int) -> list[Any]:
        items: list[Any] = []
        for item in node.value:
            if type(item) is ScalarNode and item.tag is _UNTAGGED:
                items.append(self.scalar(item))
            else:
                items.append(self.node(item, depth + 1))
        return items

    def mapping(self, node: Any, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if (type(key_node) is not ScalarNode or key_node.tag is not _UNTAGGED
                    or not (key_node.style or (key and key[0] not in _MAYBE_TYPED))):
                key = self.key(key_node)  # not a plain word: check it (most keys are)
            if key in result:
                self._duplicate(node, key_node)
                self.node(value_node, depth + 1)  # for the problems inside it
            elif type(value_node) is ScalarNode and value_node.tag is _UNTAGGED:
                result[key] = self.scalar(value_node)
            else:
                result[key] = self.node(value_node, depth + 1)
        return result

    def _duplicate(self, node: Any, again: Any) -> None:
        first = next(k for k, _ in node.value if k.value == again.value)
        message = DUPLICATE_KEY.format(key=again.value, line=first.start_mark.line + 1)
        mark = again.start_mark
        self.problems.append((mark.line + 1, mark.column + 1, message))

    def key(self, node: Any) -> str:
        if type(node) is not ScalarNode or node.tag is not _UNTAGGED:
            raise _GiveUp  # a list or mapping as a key, or a tagged key
        text: str = node.value
        value, problem = yamlscalars.resolve(text, key=True)
        if problem is None and not isinstance(value, str):
            problem = NON_TEXT_KEY.format(text=text, what=_KINDS[type(value)])
        if problem is not None:
            mark = node.start_mark
            self.problems.append((mark.line + 1, mark.column + 1, problem))
        return text


class _Positions:
    """The positions the event builder records, from a tree :class:`_Walk` accepted."""

    def __init__(self) -> None:
        self.values: dict[Path, Pos] = {}
        self.keys: dict[Path, Pos] = {}
        self.blocks: dict[Path, str] = {}

    def node(self, node: Any, path: Path) -> None:
        mark = node.start_mark
        self.values[path] = (mark.line + 1, mark.column + 1)
        kind = type(node)
        if kind is ScalarNode:
            if node.style in _BLOCK:
                self.blocks[path] = node.style
        elif kind is SequenceNode:
            for index, item in enumerate(node.value):
                self.node(item, (*path, index))
        else:
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    self.node(value_node, (*path, f"{key} (again)"))
                    continue
                seen.add(key)
                mark = key_node.start_mark
                self.keys[(*path, key)] = (mark.line + 1, mark.column + 1)
                self.node(value_node, (*path, key))
