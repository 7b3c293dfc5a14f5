"""What one figure is once drawn from a store: its tables (the plotted numbers), the SQL it ran, the verdict it
judged answers by, n, and how to draw it - and why a figure cannot be drawn from a sweep's rows (`Unsupported`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


class Unsupported(Exception):
    """The sweeps' rows cannot support this figure; the message says what is missing ("no swap runs")."""


@dataclass
class Drawn:
    name: str                        # the figure's name (`fig3b`), its files' stem
    title: str
    verdict: str                     # the verdict the answers were judged by, named ("not judged" for none)
    tables: dict[str, list[dict]]    # the plotted numbers: "" is the main table, others are named beside it
    n: str                           # what the numbers rest on ("2 tasks x 1 seed: 14 runs")
    plot: Callable                   # plot(plt) -> a matplotlib figure
    sql: list[tuple[str, list]] = field(default_factory=list)  # every query it ran, with its bound values
    notes: list[str] = field(default_factory=list)             # caveats shown under it


def pairs(rows: list[dict], key) -> dict:
    """{key(row): [rows]} in first-seen order."""
    out: dict = {}
    for row in rows:
        out.setdefault(key(row), []).append(row)
    return out
