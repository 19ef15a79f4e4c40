from bot.commands import Command, CommandError, Verb, parse_commands


def test_run_with_quoted_values() -> None:
    [cmd] = parse_commands('Please:\n/run deploy env=prod "note=two words" empty=')
    assert cmd == Command(Verb.RUN, "deploy", {"env": "prod", "note": "two words", "empty": ""}, 2)


def test_commands_only_at_line_start() -> None:
    body = "say /run deploy please\n> /run quoted\n```\n/run fenced\n```\n  /cancel abc123"
    assert parse_commands(body) == [Command(Verb.CANCEL, "abc123", {}, 6)]


def test_unknown_verbs_and_plain_text_are_ignored() -> None:
    assert parse_commands("/deploy x\n/runner y\nhello") == []


def test_help_pause_resume() -> None:
    verbs = [c.verb for c in parse_commands("/help\n/pause nightly\n/resume nightly")
             if isinstance(c, Command)]
    assert verbs == [Verb.HELP, Verb.PAUSE, Verb.RESUME]


def test_errors_name_the_problem() -> None:
    found = parse_commands('/run\n/run x bad\n/run x "k=unclosed\n/cancel a b')
    assert all(isinstance(f, CommandError) for f in found)
    messages = [f.message for f in found if isinstance(f, CommandError)]
    assert "needs a flow id" in messages[0]
    assert "`bad` is not `key=value`" in messages[1]
    assert "close the quotes" in messages[2]
    assert "takes one argument" in messages[3]
