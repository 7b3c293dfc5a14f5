"""CI does what the README tells a newcomer: `.ci/run`'s set-up lines and test command stand verbatim in README.md,
in its set-up and test blocks (a README edited alone would leave CI testing something no newcomer runs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shell_blocks(markdown: str) -> list[list[str]]:
    return [block.strip().splitlines() for block in re.findall(r"```bash\n(.*?)```", markdown, re.S)]


def test_ci_runs_the_readmes_set_up_lines_and_test_command_verbatim():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd ", "rm "))]
    blocks = shell_blocks((ROOT / "README.md").read_text())
    set_up, test = blocks[0], next(block for block in blocks if block == ["./run-tests"])
    assert ci == [*set_up, *test], f".ci/run runs {ci}, the README says {set_up + test}"
    assert any("python -m venv" in line for line in set_up), "the newcomer's fresh virtualenv"
    assert any("torch==" in line and "/whl/cpu" in line for line in set_up), "the CPU build of torch, said how"
