"""Validation of untrusted flows in a child process with a hard memory and time limit.

:func:`runner.validation.validate.validate_files` is linear in its input and has its own
budget of time and problems per file; this is the belt to those braces, for
flows from pull requests: whatever a parser or a regular-expression engine
might still do with hostile text, it happens in a forked child whose address
space is capped (``RLIMIT_AS``) and which is killed after ``seconds``. The
bot's process only ever holds the pickled report.

A plain ``fork``: the child runs pure validation code and leaves with
``os._exit``; CPython re-initialises the import and logging locks in a forked
child, and nothing else it touches is shared. It costs a few milliseconds.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import time
from collections.abc import Mapping
from datetime import datetime

from runner.backends.fit import Target
from runner.validation import schema_messages
from runner.validation.diagnostics import Diagnostic, Severity
from runner.validation.validate import FileReport, RepoReport, validate_files

log = logging.getLogger(__name__)

OUT_OF_MEMORY = (
    "not validated: validating the flows needed more than {mb:,} MB and was stopped; "
    "make the flows smaller or fewer"
)
OUT_OF_TIME = (
    "not validated: validating the flows took longer than {seconds:g}s and was stopped; "
    "make the flows smaller or fewer"
)
CRASHED = "not validated: the validator stopped unexpectedly ({detail}); please report this"
_MEMORY = "memory"  # what the child sends when it ran out of memory


class ValidationStopped(Exception):
    """The child validating the flows was stopped (memory, time) or crashed: no file
    was validated. The message says which limit and what to do; ``report`` gives every
    file that message as an error."""

    def __init__(self, message: str, report: RepoReport) -> None:
        super().__init__(message)
        self.report = report


def validate_isolated(
    files: Mapping[str, bytes], *, now: datetime, memory_bytes: int, seconds: float,
    target: Target | None = None,
) -> RepoReport:
    """:func:`validate_files` in a child limited to ``memory_bytes`` more address
    space than it starts with and ``seconds`` of wall time. Over either, every file
    gets an error diagnostic saying which limit and what to do. (Free heap the
    calling process still maps counts as room too: the cap stops gigabytes, not
    megabytes.) ``target``: the backend the flows will run on, as plain data (the child
    never reaches an engine)."""
    try:
        return validate_or_stop(files, now=now, memory_bytes=memory_bytes, seconds=seconds,
                                target=target)
    except ValidationStopped as stopped:
        return stopped.report


def validate_or_stop(
    files: Mapping[str, bytes], *, now: datetime, memory_bytes: int, seconds: float,
    target: Target | None = None,
) -> RepoReport:
    """:func:`validate_isolated`, but a child over its limits (or crashed) raises
    :class:`ValidationStopped`, for callers that must act on no answer at all (a push
    registers nothing) rather than on every file failing."""
    if not files or not hasattr(os, "fork"):
        return validate_files(files, now=now, target=target)  # nothing to isolate, or no way to
    schema_messages.fast_check()  # compiled once here, not again in every child
    schema_messages.validator()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        _child(write, files, now, memory_bytes, target)
    os.close(write)
    try:
        payload = _read_until(read, time.monotonic() + seconds)
    finally:
        os.close(read)
        status = _reap(pid)
    outcome = _outcome(payload, status)
    if isinstance(outcome, RepoReport):
        return outcome
    log.warning("isolated validation failed: %s", outcome, extra={"files": len(files)})
    if outcome == _MEMORY:
        message = OUT_OF_MEMORY.format(mb=memory_bytes // 2**20)
    elif payload is None:
        message = OUT_OF_TIME.format(seconds=seconds)
    else:
        message = CRASHED.format(detail=outcome)
    raise ValidationStopped(message, _all_failed(files, message))


def _read_until(fd: int, deadline: float) -> bytes | None:
    """All the child writes, or None if it is not done by ``deadline``."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> int:
    """Wait for the child, killing it first if it is still at work."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return status


def _outcome(payload: bytes | None, status: int) -> RepoReport | str:
    if payload is None:
        return "time"
    if not payload:
        if os.WIFSIGNALED(status):
            return f"signal {os.WTERMSIG(status)}"
        return f"exit code {os.waitstatus_to_exitcode(status)}"
    result = pickle.loads(payload)  # written by our own child
    if isinstance(result, RepoReport) or result == _MEMORY:
        return result  # type: ignore[no-any-return]
    return f"unexpected answer {type(result).__name__}"


def _child(fd: int, files: Mapping[str, bytes], now: datetime, memory_bytes: int,
           target: Target | None) -> None:
    code = 0
    try:
        _limit_address_space(memory_bytes)
        payload = _answer(files, now, target)
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
    except BaseException:  # nothing may escape into the parent's code in this process
        code = 1
    finally:
        os._exit(code)


def _answer(files: Mapping[str, bytes], now: datetime, target: Target | None) -> bytes:
    """The pickled report, or the out-of-memory answer."""
    try:
        return pickle.dumps(validate_files(files, now=now, target=target))
    except MemoryError:
        pass  # not answered in here: the traceback still holds the memory that ran out
    return pickle.dumps(_MEMORY)


def _limit_address_space(extra: int) -> None:
    """Cap this process's address space at what it maps now plus ``extra`` bytes."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + extra
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        log.warning("no address-space limit on this platform; time limit only")


def _all_failed(files: Mapping[str, bytes], message: str) -> RepoReport:
    reports = [
        FileReport(path, [Diagnostic(path, 1, 1, Severity.ERROR, message)]) for path in files
    ]
    return RepoReport(sorted(reports, key=lambda f: f.path))
