"""Validate flow files: YAML, then the schema, then the semantic rules.

Pure: no network, no Docker, nothing is run. Every problem becomes a
:class:`Diagnostic` at ``file:line:col``; errors fail validation, warnings do
not. Bad input never raises: unreadable files and internal surprises become
diagnostics too.

    report = validate_paths([Path("flows")])
    for d in report.errors: print(d)      # flows/etl.yml:12:7: error: ...
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from runner.backends.fit import Target
from runner.loading import yamlload
from runner.model.flows import Flow, flow_from_data
from runner.validation import capability_check, repair, schema_messages, semantic
from runner.validation.diagnostics import (
    REPO_OVER_TIME,
    Budget,
    Diagnostic,
    OverBudget,
    Reporter,
    Severity,
    sort_key,
)

__all__ = [
    "Diagnostic",
    "FileReport",
    "RepoReport",
    "Severity",
    "validate_files",
    "validate_paths",
    "validate_text",
]

log = logging.getLogger(__name__)

FLOW_SUFFIXES = (".yml", ".yaml")
DUPLICATE_FLOW_ID = 'flow id "{id}" is also used by {others}; flow ids must be unique'
UNREADABLE = "cannot read file: {reason}"
_BUDGET = Budget()
INTERNAL = "internal error while validating ({kind}); please report this file to the maintainers"


@dataclass
class FileReport:
    """Validation result of one file; ``flow`` is set when it has no errors.

    ``locate_id`` finds where the flow's ``id`` is, for the cross-file check of
    duplicate ids; it is dropped once :func:`validate_files` has made that check.
    It holds the file's text, never its parse: a repository's parses are not all
    kept at once."""

    path: str
    diagnostics: list[Diagnostic]
    flow: Flow | None = None
    locate_id: Callable[[], tuple[int, int]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def id_pos(self) -> tuple[int, int]:
        return self.locate_id() if self.locate_id is not None else (1, 1)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]


@dataclass
class RepoReport:
    """Validation result of a set of files, including cross-file checks."""

    files: list[FileReport]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def flows(self) -> list[Flow]:
        return [f.flow for f in self.files if f.flow is not None]

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for f in self.files for d in f.diagnostics]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    def summary(self) -> str:
        """``3 flows valid`` / ``1 of 3 flows invalid``, plus any warning count."""
        total = len(self.files)
        noun = "flow" if total == 1 else "flows"
        if total == 0:
            text = "no flow files found"
        elif self.ok:
            text = f"{total} {noun} valid"
        else:
            bad = sum(not f.ok for f in self.files)
            text = f"{bad} of {total} {noun} invalid"
        warnings = len(self.warnings)
        if warnings:
            text += f", {warnings} warning" + ("" if warnings == 1 else "s")
        return text


def validate_text(
    path: str, data: bytes | str, *, now: datetime | None = None, budget: Budget | None = None,
    target: Target | None = None,
) -> FileReport:
    """Validate one flow file's content; ``path`` is only used in messages.

    ``now`` anchors the time-dependent checks (a schedule that never fires, DST
    warnings for the coming year); it defaults to the current time. ``budget``
    bounds the work on one file (default: :class:`~runner.validation.diagnostics.Budget`).
    ``target``: the backend flows will run on; what it cannot honour is an error.
    """
    return _validate_text(path, data, now or datetime.now(UTC), budget or _BUDGET,
                          target=target)


def _validate_text(
    path: str,
    data: bytes | str,
    moment: datetime,
    budget: Budget,
    repo_deadline: float = float("inf"),
    target: Target | None = None,
) -> FileReport:
    started = budget.clock()
    if started > repo_deadline:  # the repository's time ran out before this file
        message = REPO_OVER_TIME.format(seconds=budget.repo_seconds)
        return FileReport(path, [Diagnostic(path, 1, 1, Severity.ERROR, message)])
    loaded = yamlload.load(data)
    report = Reporter(path, loaded, budget=budget, deadline=started + budget.seconds,
                      repo_deadline=repo_deadline)  # loading counted too
    flow = None
    if loaded.data is not None:  # YAML-level problems that leave data hide nothing else
        try:
            flow = _check(loaded.data, report, moment, path)
            if flow is not None and target is not None:
                capability_check.report(flow, target, report)
        except OverBudget as exc:  # a bounded answer for hostile or absurd files
            log.warning("validation stopped: %s", exc, extra={"flow_path": path})
            report.diagnostics.append(
                Diagnostic(path, exc.line, exc.col, Severity.ERROR, str(exc))
            )
            flow = None
        except MemoryError:
            raise  # not a bug in this file's checks; an isolated validation reports it
        except Exception as exc:  # a bug here must not become a traceback for the user
            log.exception("validator failed", extra={"flow_path": path})
            report.diagnostics.append(
                Diagnostic(path, 1, 1, Severity.ERROR, INTERNAL.format(kind=type(exc).__name__))
            )
            flow = None
    diagnostics = sorted(set(_with_yaml_problems(path, loaded, report.diagnostics)), key=sort_key)
    result = FileReport(path, diagnostics)
    result.flow = flow if result.ok else None
    if result.flow is not None:  # only valid flows take part in the duplicate-id check
        result.locate_id = partial(_id_pos, data)
    return result


def _with_yaml_problems(
    path: str, loaded: yamlload.Loaded, found: list[Diagnostic]
) -> list[Diagnostic]:
    """The loader's problems, and the checks' findings at other places: an unquoted
    ``yes`` is explained once, as YAML, not again as "expected true or false"."""
    places = {(p.line, p.col) for p in loaded.problems}
    yaml_level = [Diagnostic(path, p.line, p.col, Severity.ERROR, p.message)
                  for p in loaded.problems]
    return yaml_level + [d for d in found if (d.line, d.col) not in places]


def _id_pos(data: bytes | str) -> tuple[int, int]:
    """Where the flow's ``id`` is, parsing the text again: done only for duplicate ids,
    so that the parse of each file (often 100x the text) is let go once it is checked."""
    return yamlload.load(data).value_pos(("id",))


def _check(data: dict[str, object], report: Reporter, now: datetime, path: str) -> Flow | None:
    report.tick()
    schema_messages.check(data, report)
    if not report.diagnostics:
        report.tick()
        semantic.check(data, report, now)
        report.tick()
        return flow_from_data(data, path)
    # The semantic checks assume the schema's shape: they run on a copy in which
    # each malformed part has a stand-in, and say nothing about the stand-ins.
    report.tick()
    repaired = repair.repair(_inputs_by_name(data), schema_messages.schema(),
                             schema_messages.fast_check())
    if repaired is None:
        return None  # nothing well-formed enough to check further
    if isinstance(data.get("inputs"), list):
        repaired.bad.add(("inputs",))
    report.quiet = repaired.quiet
    try:
        semantic.check(repaired.data, report, now)
    finally:
        report.quiet = None
    return None


def _inputs_by_name(data: dict[str, object]) -> dict[str, object]:
    """Inputs written as a list of ``id:`` items (Kestra's form) keep their names for
    the other checks, so ``{{ inputs.region }}`` is not reported as unknown too."""
    inputs = data.get("inputs")
    if not isinstance(inputs, list):
        return data
    names = [item["id"] for item in inputs if isinstance(item, dict)
             and isinstance(item.get("id"), str)]
    return {**data, "inputs": {name: {"type": "string"} for name in names}}


def validate_files(
    files: Mapping[str, bytes], *, now: datetime | None = None, budget: Budget | None = None,
    target: Target | None = None,
) -> RepoReport:
    """Validate several files (path -> content) and check flow ids are unique across them.

    ``budget`` applies to each file on its own, and to all of them together; ``target``
    as for :func:`validate_text`."""
    moment = now or datetime.now(UTC)  # one instant for all files, so results agree
    per_file = budget or _BUDGET
    repo_deadline = per_file.clock() + per_file.repo_seconds
    reports = [_validate_text(path, data, moment, per_file, repo_deadline, target)
               for path, data in files.items()]
    _check_unique_flow_ids(reports)
    for report in reports:
        report.locate_id = None  # let each file's text and parse go
    return RepoReport(reports)


def _check_unique_flow_ids(reports: list[FileReport]) -> None:
    by_id: dict[str, list[FileReport]] = {}
    for report in reports:
        if report.flow is not None:
            by_id.setdefault(report.flow.id, []).append(report)
    for flow_id, owners in by_id.items():
        if len(owners) < 2:
            continue
        for report in owners:
            others = _others([o.path for o in owners if o is not report])
            line, col = report.id_pos
            message = "id: " + DUPLICATE_FLOW_ID.format(id=flow_id, others=others)
            report.diagnostics.append(Diagnostic(report.path, line, col, Severity.ERROR, message))
            report.diagnostics.sort(key=sort_key)
            report.flow = None


def _others(paths: list[str], shown: int = 5) -> str:
    """The files sharing an id, at most ``shown`` by name: one id in a thousand files
    must not give each of them a message naming all the others."""
    if len(paths) <= shown:
        return ", ".join(paths)
    return ", ".join(paths[:shown]) + f" and {len(paths) - shown} more"


def flow_files(paths: Sequence[Path]) -> list[Path]:
    """Files named by ``paths``: directories give their ``*.yml``/``*.yaml``, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in FLOW_SUFFIXES))
        else:
            found.append(path)
    return found


class _TooBig(Exception):
    pass


def _read(path: Path) -> bytes:
    """The file's bytes, refusing FIFOs and devices and never reading past the size limit."""
    if not path.is_file():
        reason = "no such file" if not path.exists() else "not a regular file"
        raise OSError(0, reason)
    with path.open("rb") as handle:
        data = handle.read(yamlload.MAX_BYTES + 1)
        if len(data) > yamlload.MAX_BYTES:
            size = os.fstat(handle.fileno()).st_size
            raise _TooBig(yamlload.TOO_BIG.format(size=size, limit=yamlload.MAX_BYTES))
    return data


def validate_paths(paths: Sequence[Path], *, now: datetime | None = None,
                   target: Target | None = None) -> RepoReport:
    """Validate files and directories; unreadable files become error diagnostics.
    ``target`` as for :func:`validate_text`."""
    contents: dict[str, bytes] = {}
    unreadable: list[FileReport] = []
    for path in flow_files(paths):
        try:
            contents[str(path)] = _read(path)
        except (OSError, _TooBig) as exc:
            reason = str(exc) if isinstance(exc, _TooBig) else UNREADABLE.format(
                reason=exc.strerror or type(exc).__name__
            )
            diagnostic = Diagnostic(str(path), 1, 1, Severity.ERROR, reason)
            unreadable.append(FileReport(str(path), [diagnostic]))
    report = validate_files(contents, now=now, target=target)
    report.files.extend(unreadable)
    report.files.sort(key=lambda f: f.path)
    return report
