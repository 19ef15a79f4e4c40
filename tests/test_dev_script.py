"""`./dev`: set-up that is already done costs nothing.

``./dev test`` installs what is missing before the tests run, so by now every
system package it checks for is present and must be recognised as such (a
check that misreads one would re-run ``apt-get`` on every call)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_a_set_up_machine_has_no_system_package_left_to_install() -> None:
    done = subprocess.run([str(ROOT / "dev"), "missing"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "")
