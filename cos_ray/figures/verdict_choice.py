"""Which verdict a figure set judges by: the one asked for (`--verdict`), or the strictest the store supports -
`solved` on generated route tasks, else EvalKit's where the store has its scores, else the task score. Kept apart
from `verdicts` because `solved` imports a task family, which the dashboard (importing the figure modules) must not."""

from __future__ import annotations

from cos_ray.figures.verdicts import EvalKitVerdict, ScoreVerdict


def verdict_for(name: str | None, reader, where=None):
    """The verdict named `name` (`score` | `evalkit` | `solved`), or the strictest the store supports (None)."""
    from cos_ray.errors import UsageError

    if name in (None, "solved"):
        from cos_ray.figures.solved_verdict import SolvedVerdict

        try:
            return SolvedVerdict(reader, where)
        except ValueError as err:
            if name == "solved":
                raise UsageError(f"--verdict solved: {err}") from None
    if name in (None, "evalkit"):
        try:
            return EvalKitVerdict(reader)
        except ValueError as err:
            if name == "evalkit":
                raise UsageError(f"--verdict evalkit: {err}") from None
    return ScoreVerdict()
