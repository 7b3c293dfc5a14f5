"""The design's one-way arrows as a test: import-linter's contracts (`.importlinter`) over the package's source.

Run in a child process (import-linter builds its graph from the source, imports nothing of cos-ray) with a timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"  # the `lint-imports` command


def test_the_import_contracts_hold():
    result = subprocess.run([sys.executable, "-c", LINT, "--config", ".importlinter", "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout, result.stdout[-4000:]
