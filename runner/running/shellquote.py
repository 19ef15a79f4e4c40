"""Tracks the POSIX shell quoting state along a script, so a template can be
replaced by a variable reference that stays inside its word whatever the value.

Only the state matters, not a full parse: single/double quotes, ``$'...'``,
backslash escapes, ``$( )``, backticks, ``$(( ))``, comments and here-documents.
"""

from __future__ import annotations

import re

TOP, DQ, SQ, ANSI, CMD, BT, ARITH, COMMENT, HEREDOC = (
    "top", "dq", "sq", "ansi", "cmd", "bt", "arith", "comment", "heredoc")
_UNQUOTED = (TOP, CMD, BT)
_WORD_BREAK = set(" \t\n;&|()<>")
_HEREDOC = re.compile(r"<<(-?)[ \t]*((?:[^\s;&|<>()'\"\\]|'[^']*'|\"[^\"]*\"|\\.)+)")

# How a reference to variable N is written in each state.
FORMS = {
    TOP: '"${%s}"', CMD: '"${%s}"', BT: '"${%s}"', COMMENT: '"${%s}"',
    DQ: "${%s}", HEREDOC: "${%s}", SQ: "'\"${%s}\"'", ANSI: "'\"${%s}\"$'",
}
WHY_NOT = {
    ARITH: "a template cannot be used inside $(( )) arithmetic; assign it to a variable first",
    "escape": "a template cannot follow a backslash",
    "quoted-heredoc": "a template cannot be used in a quoted here-document (<<'EOF'); "
                      "use an unquoted one (<<EOF)",
}


class ShellState:
    """Feed the script in order; ask :meth:`state` where the next character lands."""

    def __init__(self) -> None:
        self._stack: list[tuple[str, int]] = [(TOP, 0)]  # (state, paren depth)
        self._escaped = False
        self._prev = "\n"
        self._pending: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip tabs)
        self._line = ""

    def state(self) -> str:
        if self._escaped:
            return "escape"
        name = self._stack[-1][0]
        if name == HEREDOC and self._pending[0][1]:
            return "quoted-heredoc"
        return name

    def feed_word(self) -> None:
        """A template was emitted: it counts as a word character."""
        self._prev = "x"
        self._line += "x"

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            i = self._step(text, i)

    def _step(self, text: str, i: int) -> int:
        ch, state = text[i], self._stack[-1][0]
        if self._escaped:
            self._escaped = False
            self._prev = "x"
            return i + 1
        if state == HEREDOC:
            return self._heredoc_char(ch, i)
        if state == COMMENT:
            if ch == "\n":
                self._stack.pop()
                return self._newline(i)
            return i + 1
        if state == SQ:
            if ch == "'":
                self._stack.pop()
            return i + 1
        nxt = text[i + 1: i + 3]
        if ch == "\\" and state != SQ:
            self._escaped = True
            return i + 1
        if state in (DQ, ANSI):
            return self._quoted_char(ch, nxt, i)
        return self._unquoted_char(text, ch, nxt, i)

    def _quoted_char(self, ch: str, nxt: str, i: int) -> int:
        state = self._stack[-1][0]
        if (state == DQ and ch == '"') or (state == ANSI and ch == "'"):
            self._stack.pop()
            return i + 1
        if state == DQ:
            return self._substitution(ch, nxt, i)
        return i + 1

    def _substitution(self, ch: str, nxt: str, i: int) -> int:
        """``$((``, ``$(`` or a backtick, in any state where they expand."""
        if ch == "$" and nxt == "((":
            self._stack.append((ARITH, 2))
            return i + 3
        if ch == "$" and nxt[:1] == "(":
            self._stack.append((CMD, 1))
            return i + 2
        if ch == "`":
            self._stack.append((BT, 0))
        self._prev = ch
        return i + 1

    def _unquoted_char(self, text: str, ch: str, nxt: str, i: int) -> int:
        state, depth = self._stack[-1]
        word_start = self._prev in _WORD_BREAK
        self._prev = ch
        if ch == "'":
            self._stack.append((SQ, 0))
        elif ch == "$" and nxt[:1] == "'":
            self._stack.append((ANSI, 0))
            return i + 2
        elif ch == '"':
            self._stack.append((DQ, 0))
        elif ch == "`" and state == BT:
            self._stack.pop()
        elif ch in "$`":
            return self._substitution(ch, nxt, i)
        elif ch == "#" and word_start and state != ARITH:
            self._stack.append((COMMENT, 0))
        elif ch in "()" and state in (CMD, ARITH):
            depth += 1 if ch == "(" else -1
            self._stack[-1] = (state, depth)
            if depth == 0:
                self._stack.pop()
        elif ch == "<" and state != ARITH:
            return self._maybe_heredoc(text, i)
        elif ch == "\n" and state == TOP:
            return self._newline(i)
        return i + 1

    def _maybe_heredoc(self, text: str, i: int) -> int:
        match = _HEREDOC.match(text, i)
        if match is None or text[i:i + 3] == "<<<":
            return i + 1
        word = match.group(2)
        quoted = any(q in word for q in "'\"\\")
        delimiter = re.sub(r"""['"\\]""", "", word)
        self._pending.append((delimiter, quoted, match.group(1) == "-"))
        self._prev = "x"
        return match.end()

    def _newline(self, i: int) -> int:
        self._prev = "\n"
        if self._pending and self._stack[-1][0] == TOP:
            self._stack.append((HEREDOC, 0))
            self._line = ""
        return i + 1

    def _heredoc_char(self, ch: str, i: int) -> int:
        if ch != "\n":
            self._line += ch
            return i + 1
        delimiter, _quoted, strip = self._pending[0]
        line = self._line.lstrip("\t") if strip else self._line
        self._line = ""
        if line == delimiter:
            self._pending.pop(0)
            if not self._pending:
                self._stack.pop()
                self._prev = "\n"
        return i + 1
