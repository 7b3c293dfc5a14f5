"""Chain-of-Steps outcome of one trajectory: from which step the answer is right and stays right, and how often
correctness flipped along the steps (the paper's self-correction: early x̂0 hold several candidates, later steps
prune them)."""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.errors import UsageError


@dataclass(frozen=True)
class StepOutcome:
    correct: list[bool]  # per scored step, in step order
    first_stable_step: int | None  # the first step from which every later scored step is correct; None: the last is wrong
    flips: int  # changes of correctness between consecutive scored steps


def chain_of_steps(steps: list[int], scores: list[float], threshold: float = 0.9) -> StepOutcome:
    """steps: the step indices scored (increasing); scores: their task-specific scores."""
    steps, scores = list(steps), list(scores)
    if len(steps) != len(scores):
        raise UsageError(f"chain_of_steps: {len(steps)} steps but {len(scores)} scores")
    if any(b <= a for a, b in zip(steps[:-1], steps[1:])):
        raise UsageError(f"chain_of_steps: steps must increase, got {steps}")
    correct = [s >= threshold for s in scores]
    flips = sum(a != b for a, b in zip(correct[:-1], correct[1:]))
    first = None
    for step, ok in zip(reversed(steps), reversed(correct)):
        if not ok:
            break
        first = step
    return StepOutcome(correct, first, flips)
