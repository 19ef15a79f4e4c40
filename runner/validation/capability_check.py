"""The configured backend's verdict on a flow, placed at the fields that ask.

:mod:`runner.backends.fit` decides what a backend cannot honour; this module
turns each mismatch into a diagnostic at the field's ``file:line:col`` (an
error, or a warning where the flow still runs without what it asked for).
"""

from __future__ import annotations

from runner.backends.fit import Target, mismatches
from runner.model.flows import Flow
from runner.validation.diagnostics import Reporter, Severity


def report(flow: Flow, target: Target, reporter: Reporter) -> None:
    """Add ``flow``'s mismatches with ``target`` to ``reporter``, each at its field."""
    for mismatch in mismatches(flow, target):
        severity = Severity.WARNING if mismatch.warning else Severity.ERROR
        reporter.at(mismatch.where, mismatch.message, severity=severity)
