"""Rendering templates: hostile values reach the task byte for byte in every
quoting context, and nothing they contain ever runs. Checked by running the
rendered script with the host's shells."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.errors import RenderError
from runner.model.flows import task_from_data
from runner.running.render import render_script, render_task

HOSTILE = [
    "$(touch {p})",
    "`touch {p}`",
    '"; touch {p}; echo "',
    "'; touch {p}; echo '",
    "a\nb\ntouch {p}",
    "${{IFS}}touch${{IFS}}{p}",
    "\\\"'\\' $HOME * ?",
    "EOF\ntouch {p}\nEOF",
    "plain",
    "",
]

# Each script prints the value between markers; {T} is where the template goes.
CONTEXTS = {
    "unquoted": "printf '<%s>' {T}",
    "double": 'printf "<%s>" "{T}"',
    "double-mixed": 'printf "%s" "pre-{T}-post"',
    "single": "printf '%s' 'pre-{T}-post'",
    "ansi": "printf '%s' $'pre-{T}-post'",
    "word-glued": "printf '%s' pre{T}post",
    "command-substitution": 'x="$(printf %s {T})"; printf "%s" "$x"',
    "backticks": "x=`printf %s {T}`; printf '%s' \"$x\"",
    "heredoc": "cat <<EOF\npre-{T}-post\nEOF",
    "after-comment": "# it's a comment {T}\nprintf '%s' {T}",
}
EXPECTED = {
    "unquoted": "<{v}>", "double": "<{v}>", "double-mixed": "pre-{v}-post",
    "single": "pre-{v}-post", "ansi": "pre-{v}-post", "word-glued": "pre{v}post",
    "command-substitution": "{v}", "backticks": "{v}", "heredoc": "pre-{v}-post\n",
    "after-comment": "{v}",
}
SHELLS = [s for s in ("sh", "bash") if shutil.which(s)]


def _run(shell: str, script: str, env: dict[str, str]) -> str:
    done = subprocess.run([shell, "-e", "-c", script], env={**os.environ, **env},
                          capture_output=True, check=True)
    return done.stdout.decode()


# $'...' is a bash form; POSIX sh (dash) has no such quoting.
CASES = [(shell, context) for shell in SHELLS for context in sorted(CONTEXTS)
         if context != "ansi" or shell == "bash"]


@pytest.mark.parametrize(("shell", "context"), CASES)
@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_values_arrive_intact_and_never_execute(
    tmp_path: Path, shell: str, context: str, raw: str
) -> None:
    pwned = tmp_path / "pwned"
    value = raw.format(p=pwned)
    script, env = render_script("t", CONTEXTS[context].replace("{T}", "{{ inputs.x }}"),
                                {"inputs": {"x": value}})
    assert value not in script or value == "plain" or value == ""
    out = _run(shell, script, env)
    assert out == EXPECTED[context].format(v=value)
    assert not pwned.exists()


def test_secrets_travel_in_the_environment_never_in_the_script() -> None:
    task = task_from_data({"id": "t", "image": "busybox:{{ inputs.tag }}",
                           "commands": ["echo {{ secrets.TOKEN }}"],
                           "env": {"AUTH": "Bearer {{ secrets.TOKEN }}"}})
    rendered = render_task(task, {"inputs": {"tag": "1.36"}, "secrets": {"TOKEN": "s3cr3t"}},
                           {"FLOW": "x"})
    assert rendered.image == "busybox:1.36"
    assert rendered.argv[:3] == ("sh", "-e", "-c")
    assert "s3cr3t" not in rendered.argv[3]
    assert rendered.env["AUTH"] == "Bearer s3cr3t" and rendered.env["FLOW"] == "x"
    assert "s3cr3t" in rendered.env.values()


def test_missing_outputs_read_as_empty_and_unknown_references_fail_clearly() -> None:
    script, env = render_script("t", "echo {{ tasks.a.outputs.n }}", {"tasks": {"a": {}}})
    assert env == {"FLOWBOT_V_1": ""}
    with pytest.raises(RenderError, match=r'task "t": \{\{ inputs.nope \}\} does not name'):
        render_script("t", "echo {{ inputs.nope }}", {"inputs": {}})


@pytest.mark.parametrize("script", [
    "echo $(( {{ inputs.n }} + 1 ))",
    "echo \\{{ inputs.n }}",
    "cat <<'EOF'\n{{ inputs.n }}\nEOF",
])
def test_contexts_that_cannot_be_made_safe_are_refused(script: str) -> None:
    with pytest.raises(RenderError):
        render_script("t", script, {"inputs": {"n": "1"}})


def test_non_shell_interpreters_refuse_templates_in_their_source() -> None:
    task = task_from_data({"id": "t", "image": "python", "shell": "python3",
                           "script": "print('{{ inputs.x }}')"})
    with pytest.raises(RenderError, match="python3"):
        render_task(task, {"inputs": {"x": "1"}}, {})
    plain = task_from_data({"id": "t", "image": "python", "shell": "python3", "script": "print(1)"})
    assert render_task(plain, {}, {}).argv == ("python3", "-c", "print(1)")


def test_bools_and_numbers_render_as_text() -> None:
    script, env = render_script("t", "echo {{ inputs.a }} {{ inputs.b }}",
                                {"inputs": {"a": True, "b": 2.5}})
    assert env == {"FLOWBOT_V_1": "true", "FLOWBOT_V_2": "2.5"}
