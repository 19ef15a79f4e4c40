from bot.handlers.command_parsing import (
    MAX_BODY_CHARS,
    MAX_LINE_CHARS,
    Command,
    CommandError,
    Verb,
    parse_commands,
    parse_comment,
)


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


def test_at_most_max_commands_are_parsed_and_the_rest_are_named() -> None:
    parsed = parse_comment("/help\n" * 300, max_commands=10)
    assert len(parsed.commands) == 10 and len(parsed.ignored_lines) == 290
    assert parsed.ignored_lines[0] == 11 and parsed.ignored_lines[-1] == 300
    assert not parsed.truncated


def test_a_one_megabyte_comment_is_read_only_up_to_the_bound() -> None:
    body = "/run hello\n" * (1024 * 1024 // len("/run hello\n"))
    parsed = parse_comment(body, max_commands=10)
    assert len(parsed.commands) == 10 and parsed.truncated
    # only the first MAX_BODY_CHARS were scanned for further command lines
    assert len(parsed.ignored_lines) == len(body[:MAX_BODY_CHARS].splitlines()) - 10
    assert len(parsed.ignored_lines) < 6000


def test_an_overlong_command_line_is_refused_unparsed() -> None:
    [error] = parse_commands("/run x " + "a=b " * MAX_LINE_CHARS)
    assert isinstance(error, CommandError) and "longer than 2048 characters" in error.message


def test_a_lone_slash_is_plain_text() -> None:
    assert parse_commands("/ \n/\n/run x") == [Command(Verb.RUN, "x", {}, 3)]
