"""The quickest path of :mod:`runner.yamlload`: rapidyaml builds the data, libyaml vouches.

An ordinary flow file costs PyYAML about 200 Python objects (nodes, marks,
resolver calls) before flowbot sees a value. Here the data comes from
rapidyaml (``ryml``: a C++ parser) emitted as JSON and read by orjson, so the
only Python-level work is one pass over the tree's node types. That pass:

- checks each node against its value (mapping, list, scalar), the nesting
  limit, and that no key was lost (JSON keeps one of two equal keys);
- resolves every plain scalar that is not obviously text with flowbot's own
  YAML 1.2 rules (:mod:`runner.yamlscalars`), so the data means what the
  slower paths make of it, whatever rapidyaml's JSON typing is;
- gives up (returns None) at the first thing the other paths report or treat
  specially: anchors, aliases, tags, several documents, a YAML 1.1-only
  scalar, a non-text key, a duplicate key, text that is not printable ASCII.

libyaml remains the judge of what is valid YAML: its parser runs over the
text first (in C, creating no Python objects) and counts the events; the
tree rapidyaml built must account for exactly that many, or this path gives
up. Positions are not recorded here: :class:`runner.yamlfast.Result` works
them out from libyaml only when something is reported.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import yaml

from runner import yamlscalars

try:  # an optional accelerator: without its wheel the libyaml composer does the work
    import ryml
    from ryml import _ryml
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    ryml = None
    _ryml = None

_CParser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)

AVAILABLE = ryml is not None and _CParser is not None

# What this path leaves to the libyaml ones, by cheap text tests that may
# over-match (:func:`_unusual`):
# - tabs and CR (libyaml itself refuses other control characters), non-ASCII;
# - infinities and NaNs (inf, -.Inf, NaN...), which rapidyaml's JSON rewrites
#   even when quoted: any such whole word;
# - forms rapidyaml refuses although libyaml takes them (it prints to stderr
#   when it refuses): a tag (!), an explicit key (?), an anchor or alias (&a, *a)
#   at the start of a node, a "#" right after a closing quote or bracket, and a
#   quoted scalar or flow collection going on over several lines.
_INF_NAN = re.compile(r"(?<![\w.])[+-]?\.?(?i:inf(?:inity)?|nan)(?![\w.])")
# An ordinary line is made of: text without quotes, brackets or node marks;
# quoted text closed on the line; [...] and {...} closed on the line (one level
# of nesting inside); and !?&* where they cannot start a node: inside a word,
# as "&&", or "*" before a space or quote (cron fields).
_QUOTED = r"""\"[^"\n]*+"(?!#)|'[^'\n]*+'(?!#)"""
_MARK_OK = r"""(?<=[^\s\[{,])[!?&*]|&&|[&*](?=[\s'"]|$)"""
_FLAT = rf"""(?:[^"'\[\]{{}}!?&*\n]++|{_MARK_OK})"""
_INNER = rf"(?:{_FLAT}|{_QUOTED}|\[{_FLAT}*+\]|\{{{_FLAT}*+\}})*+"
_LINE = rf"(?:{_FLAT}|{_QUOTED}|\[{_INNER}\](?!#)|\{{{_INNER}\}}(?!#))*+$"
_UNORDINARY_LINE = re.compile(rf"^(?!{_LINE})", re.MULTILINE)


def _maybe_inf_nan(text: str) -> bool:
    lowered = text.lower()  # two substring searches in C beat the regex's scan
    return "inf" in lowered or "nan" in lowered


def _unusual(text: str) -> bool:
    return (
        not text.isascii()
        or "\t" in text
        or "\r" in text
        or (_maybe_inf_nan(text) and _INF_NAN.search(text) is not None)
        or _UNORDINARY_LINE.search(text) is not None
    )


if ryml is not None:
    _TYPE = _ryml.Tree_type
    _SIZE = _ryml.Tree_size
    _VAL = _ryml.Tree_val
    _EMIT_JSON = _ryml.emit_json_malloc
    _MAP, _SEQ, _VALUE = int(ryml.MAP), int(ryml.SEQ), int(ryml.VAL)
    _KEY_PLAIN, _VAL_PLAIN = int(ryml.KEY_PLAIN), int(ryml.VAL_PLAIN)
    # anchors, aliases and tags: refused by the event builder, which names them
    _SPECIAL = int(
        ryml.KEYANCH | ryml.VALANCH | ryml.KEYREF | ryml.VALREF | ryml.KEYTAG | ryml.VALTAG
    )
    # what a node is; anchors, aliases and tags make it none of a map, list or value
    _SHAPE = _MAP | _SEQ | _VALUE | _SPECIAL
    # what the root must be: a mapping, not a list, a scalar or a document marker
    _ROOT_KINDS = int(ryml.MAP | ryml.SEQ | ryml.VAL | ryml.DOC | ryml.STREAM)

# Plain text that flowbot's rules may not read as that text: words that are a
# boolean or null in YAML 1.2 or 1.1, and anything that starts like a number.
_WORDS = frozenset(
    "y Y yes Yes YES n N no No NO on On ON off Off OFF "
    "true True TRUE false False FALSE null Null NULL ~".split()
)
_NUMERIC_START = frozenset("0123456789+-.")
# What libyaml emits around the root besides the nodes: stream and document start/end.
_FRAME_EVENTS = 4


class _GiveUp(Exception):
    """Something the other paths handle; let them."""


def load(text: str, max_depth: int) -> dict[str, Any] | None:
    """The file's data, or None when the libyaml paths must read it."""
    if not AVAILABLE or _unusual(text):
        return None
    parser = _CParser(text)
    try:
        events = parser.raw_parse()  # libyaml's verdict on the syntax, and its event count
    except Exception:  # any parse problem: the event builder words it exactly
        return None
    finally:
        parser.dispose()
    try:
        tree = ryml.parse_in_arena(text.encode("ascii"))
        this = tree.this  # the raw SWIG object: calls with it are ~4x quicker
        root = tree.root_id()
        if _TYPE(this, root) & (_ROOT_KINDS | _SPECIAL) != _MAP:
            return None  # a list, a scalar, an explicit document or several documents
        data = orjson.loads(_EMIT_JSON(this, root))
        if type(data) is not dict:
            return None
        walk = _Walk(this, max_depth)
        size = walk.mapping(data, root, 1)
    except (_GiveUp, orjson.JSONDecodeError, ryml.ExceptionBasic):
        return None
    if size != _SIZE(this) or walk.events + 2 + _FRAME_EVENTS != events:
        return None  # a key given twice, or the parsers disagree on the shape
    return data


class _Walk:
    """One pass over the tree beside the data, counting what libyaml would emit.

    A freshly parsed rapidyaml tree numbers its nodes in document order, so a
    node's first child is the next id and its next sibling follows its subtree;
    :func:`load` checks the count against the tree's size (a key given twice,
    which JSON keeps once, shows there) and libyaml's event count."""

    def __init__(self, tree: Any, max_depth: int) -> None:
        self.tree = tree
        self.max_depth = max_depth
        self.events = 0

    def mapping(self, data: dict[str, Any], node: int, depth: int) -> int:
        """Check the mapping at ``node``; return the id after its subtree."""
        if depth > self.max_depth:
            raise _GiveUp
        tree = self.tree
        child = node + 1
        events = len(data)  # the keys
        for key, value in data.items():
            kind = _TYPE(tree, child)
            if kind & _KEY_PLAIN and (not key or key in _WORDS or key[0] in _NUMERIC_START):
                resolved, problem = yamlscalars.resolve(key, key=True)
                if problem is not None or type(resolved) is not str:
                    raise _GiveUp  # a YAML 1.1 or non-text key: the composer reports it
            value_type = type(value)
            if value_type is dict:
                if kind & _SHAPE != _MAP:
                    raise _GiveUp
                child = self.mapping(value, child, depth + 1)
                events += 2  # the mapping's start and end
            elif value_type is list:
                if kind & _SHAPE != _SEQ:
                    raise _GiveUp
                child = self.sequence(value, child, depth + 1)
                events += 2
            else:
                if kind & _SHAPE != _VALUE:
                    raise _GiveUp
                if kind & _VAL_PLAIN:
                    if value_type is not str:
                        data[key] = self.plain(child)  # JSON typed it: read the text again
                    elif not value or value in _WORDS or value[0] in _NUMERIC_START:
                        data[key] = _resolved(value)
                elif value_type is not str:
                    raise _GiveUp
                child += 1
                events += 1
        self.events += events
        return child

    def sequence(self, data: list[Any], node: int, depth: int) -> int:
        """Check the list at ``node``; return the id after its subtree."""
        if depth > self.max_depth:
            raise _GiveUp
        tree = self.tree
        child = node + 1
        events = 0
        for index, value in enumerate(data):
            kind = _TYPE(tree, child)
            value_type = type(value)
            if value_type is dict:
                if kind & _SHAPE != _MAP:
                    raise _GiveUp
                child = self.mapping(value, child, depth + 1)
                events += 2
            elif value_type is list:
                if kind & _SHAPE != _SEQ:
                    raise _GiveUp
                child = self.sequence(value, child, depth + 1)
                events += 2
            else:
                if kind & _SHAPE != _VALUE:
                    raise _GiveUp
                if kind & _VAL_PLAIN:
                    if value_type is not str:
                        data[index] = self.plain(child)  # JSON typed it: read the text again
                    elif not value or value in _WORDS or value[0] in _NUMERIC_START:
                        data[index] = _resolved(value)
                elif value_type is not str:
                    raise _GiveUp
                child += 1
                events += 1
        self.events += events
        return child

    def plain(self, node: int) -> Any:
        """A plain scalar read by flowbot's rules from its text, not rapidyaml's typing."""
        raw = _VAL(self.tree, node)
        return _resolved(bytes(raw).decode("ascii") if raw else "")


def _resolved(text: str) -> Any:
    value, problem = yamlscalars.resolve(text)
    if problem is not None:
        raise _GiveUp  # a YAML 1.1-only form: the composer reports it where it is
    return value
