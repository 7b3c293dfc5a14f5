"""Exploration along the denoising steps, as numbers: how far apart a unit's members are, how far each run still is
from its own answer, how many candidate routes a step draws, and when a run commits.

Defined here once (numpy; the driver computes them from what the engine recorded, `MemberResult.x0_latents` and the
decoded filmstrips) and written as columns of the store (`steps`, `runs`; SQL in docs/probes.md):

- `x0_spread` (steps; units with several members): the mean over member pairs of the RMS difference between their
  x̂0 at that step - sqrt(mean((x̂0_i - x̂0_j)²)) over latent values. The model's exploration breadth on any task.
- `x0_to_final` (steps): the RMS difference between the run's x̂0 at that step and its own final latent (x̂0 at the
  last step equals it exactly). 0 at the last step.
  Both read x̂0 as the engine keeps it: the latent itself, average-pooled over k x k cells only when it is larger than
  2^18 values (`cos_ray.engine.records.x0_trace`; never for the tiny presets).
- `candidates` (steps; path families, decoded steps): the number of candidate routes drawn in the decoded x̂0
  (`cos_ray.tasks.routes`), and `answer_in_candidates`: whether the run's answer - the routes of its last step - is
  among them (null when the last step draws no route).
- `commit_step` (runs): the first recorded step from which the run's answer no longer changes, the answer at a step
  being its set of candidate routes (path families); null when the run's steps were not decoded or its family has
  no route reader. Unlike `lock_in_step` (the first step from which the answer stays *correct*), a run commits to a
  wrong answer too.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def _array(latent) -> np.ndarray:
    """A latent (torch tensor or numpy array) as float64 numpy."""
    if hasattr(latent, "detach"):
        latent = latent.detach().float().cpu().numpy()
    return np.asarray(latent, dtype=np.float64)


def rms(a, b) -> float:
    """sqrt(mean((a - b)²)) of two latents of one shape."""
    a, b = _array(a), _array(b)
    if a.shape != b.shape:
        raise ValueError(f"x̂0 shapes differ: {a.shape} vs {b.shape}")
    return float(np.sqrt(np.mean((a - b) ** 2)))


def x0_spread(latents: list) -> float | None:
    """Mean pairwise RMS difference of the members' x̂0 at one step; None with fewer than two members."""
    if len(latents) < 2:
        return None
    arrays = [_array(latent) for latent in latents]
    return float(np.mean([rms(a, b) for a, b in combinations(arrays, 2)]))


def spread_by_step(members_x0: list[dict]) -> dict[int, float]:
    """{step: x0_spread} over the steps every member recorded (members_x0: per member {step: x̂0})."""
    if len(members_x0) < 2:
        return {}
    shared = set(members_x0[0]).intersection(*members_x0[1:])
    return {step: x0_spread([member[step] for member in members_x0]) for step in sorted(shared)}


def to_final_by_step(x0: dict, final) -> dict[int, float]:
    """{step: RMS difference between x̂0 at that step and the run's final latent}, at x̂0's resolution (a trace
    pooled by the engine is compared with the last step's trace, which equals the final latent pooled alike)."""
    if not x0:
        return {}
    reference = _array(final)
    if _array(x0[max(x0)]).shape != reference.shape:
        reference = x0[max(x0)]
    return {step: rms(latent, reference) for step, latent in sorted(x0.items())}


def commit_step(steps: list[int], answers: list) -> int | None:
    """The first of `steps` (increasing) from which the answer equals the last step's answer at every later step;
    None when there is no step or an answer is unknown (None)."""
    if not steps or len(steps) != len(answers) or any(answer is None for answer in answers):
        return None
    final = answers[-1]
    first = steps[-1]
    for step, answer in zip(reversed(steps), reversed(answers)):
        if answer != final:
            break
        first = step
    return first


def route_answers(candidates_by_step: dict[int, list | None]) -> tuple[list[int], list]:
    """(steps, answers) for `commit_step`: a step's answer is its set of candidate routes."""
    steps = sorted(candidates_by_step)
    return steps, [None if candidates_by_step[s] is None else frozenset(candidates_by_step[s]) for s in steps]


def candidate_columns(candidates_by_step: dict[int, list | None]) -> dict[int, dict]:
    """{step: {"candidates": n, "answer_in_candidates": bool | None}} (see the module docstring)."""
    if not candidates_by_step:
        return {}
    final = candidates_by_step[max(candidates_by_step)]
    answer = set(final or ())
    columns = {}
    for step, routes in candidates_by_step.items():
        if routes is None:
            continue
        columns[step] = {"candidates": len(routes),
                         "answer_in_candidates": bool(answer & set(routes)) if answer else None}
    return columns
