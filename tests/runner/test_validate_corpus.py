"""The corpus: every file under tests/corpus/ with its exact expected diagnostics.

``invalid/X.yml`` must produce exactly the ``line:col: severity: message`` lines
of ``invalid/X.expected``; ``valid/X.yml`` must produce none (or exactly those of
``valid/X.expected``, for warnings, which pass).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.validation.validate import validate_text

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _cases(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yml"))


def _lines(path: Path) -> list[str]:
    report = validate_text(path.name, path.read_bytes(), now=NOW)
    return [f"{d.line}:{d.col}: {d.severity}: {d.message}" for d in report.diagnostics]


def _expected(path: Path) -> list[str]:
    expected = path.with_suffix(".expected")
    if not expected.exists():
        return []
    return [line for line in expected.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("path", _cases("invalid"), ids=lambda p: p.stem)
def test_invalid_file_gets_exactly_its_expected_diagnostics(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} has no .expected file"
    assert _lines(path) == expected
    report = validate_text(path.name, path.read_bytes(), now=NOW)
    assert not report.ok
    assert report.flow is None


@pytest.mark.parametrize("path", _cases("valid"), ids=lambda p: p.stem)
def test_valid_file_passes(path: Path) -> None:
    assert _lines(path) == _expected(path)
    report = validate_text(path.name, path.read_bytes(), now=NOW)
    assert report.ok
    assert report.flow is not None


def test_every_expected_file_has_its_flow_file() -> None:
    for expected in CORPUS.glob("*/*.expected"):
        assert expected.with_suffix(".yml").exists(), expected
