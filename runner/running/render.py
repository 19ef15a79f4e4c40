"""Filling in ``{{ ... }}`` templates for one task attempt, safely.

In ``commands``/``script`` a template is never pasted into the shell text: it
becomes a reference to an environment variable ``FLOWBOT_V_<n>`` carrying the
value, written in the form the quoting state at that position needs (see
:mod:`runner.running.shellquote`), so no value can leave its word or run anything.
Secrets travel the same way and never appear in the script. In ``env`` values
and ``image`` the value is substituted as is (no shell reads them).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from runner.errors import RenderError
from runner.model.flows import Task
from runner.model.templates import scan
from runner.running.shellquote import FORMS, WHY_NOT, ShellState

VAR_PREFIX = "FLOWBOT_V_"
POSIX_SHELLS = frozenset({"sh", "bash", "ash", "dash", "ksh", "mksh", "zsh"})
_NON_SHELL = ('templates cannot be used in a script run by "{shell}"; read the value from '
              "the environment instead (inputs are in $INPUT_<NAME>)")
_UNKNOWN = "{{{{ {ref} }}}} does not name a value available to this task"
_MALFORMED = "{{{{ {ref} }}}} is not a valid template reference"


@dataclass(frozen=True)
class Rendered:
    """A task ready for a backend: image, argv and the extra environment."""

    image: str
    argv: tuple[str, ...]
    env: dict[str, str]


def stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def lookup(context: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """The value at ``path`` in the nested ``context``; None if it names nothing."""
    node: Any = context
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, Mapping) else stringify(node)


def _value(task_id: str, context: Mapping[str, Any], text: str, path: tuple[str, ...]) -> str:
    if not path:
        raise RenderError(task_id, _MALFORMED.format(ref=text))
    value = lookup(context, path)
    if value is not None:
        return value
    if path[0] == "tasks" and len(path) == 4 and path[2] == "outputs":
        return ""  # an output the task did not write reads as empty, as in GitHub Actions
    raise RenderError(task_id, _UNKNOWN.format(ref=text))


def substitute(task_id: str, text: str, context: Mapping[str, Any]) -> str:
    """Plain substitution, for values no shell parses (env values, image)."""
    parts, last = [], 0
    for ref in scan(text):
        parts += [text[last:ref.start], _value(task_id, context, ref.text, ref.path)]
        last = ref.end
    return "".join(parts) + text[last:]


def render_script(
    task_id: str, script: str, context: Mapping[str, Any], first: int = 1
) -> tuple[str, dict[str, str]]:
    """The script with each template replaced by a quoted variable reference,
    and the variables to put in the environment."""
    state, parts, env, last = ShellState(), [], {}, 0
    for number, ref in enumerate(scan(script), start=first):
        state.feed(script[last:ref.start])
        where = state.state()
        if where not in FORMS:
            raise RenderError(task_id, WHY_NOT.get(where, where))
        name = f"{VAR_PREFIX}{number}"
        env[name] = _value(task_id, context, ref.text, ref.path)
        parts += [script[last:ref.start], FORMS[where] % name]
        state.feed_word()
        last = ref.end
    return "".join(parts) + script[last:], env


def render_task(task: Task, context: Mapping[str, Any], flow_env: Mapping[str, str]) -> Rendered:
    """Everything templated in ``task``: its image, shell command and env values."""
    shell = shlex.split(task.shell) or ["sh"]
    env = {k: substitute(task.id, v, context) for k, v in {**flow_env, **task.env}.items()}
    image = substitute(task.id, task.image, context)
    if PurePath(shell[0]).name not in POSIX_SHELLS:
        if scan(task.source):
            raise RenderError(task.id, _NON_SHELL.format(shell=task.shell))
        return Rendered(image, (*shell, "-c", task.source), env)
    script, variables = render_script(task.id, task.source, context)
    return Rendered(image, (*shell, "-e", "-c", script), {**env, **variables})
