"""`cos-ray tasks generate`: n seeded samples of one family, written as `{out}/{split}/{task}/{00000..}/`.

Sample i draws from numpy's generator seeded with (seed, i): it does not depend on n, so `--n 10` extends `--n 5`
with the same five first samples. Every parameter is checked and every target is free before anything is written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cos_ray.errors import UsageError
from cos_ray.tasks.families import get_family
from cos_ray.tasks.folder import SPLITS
from cos_ray.tasks.generators.common import FPS
from cos_ray.tasks.writer import write_sample


def family_params(family: str, **params):
    """The family's parameter dataclass from keyword values; an unknown name is an error listing the known ones."""
    fam = get_family(family)
    known = [f.name for f in dataclasses.fields(fam.params)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise UsageError(f"{family}: no parameter {', '.join(unknown)} (its parameters: {', '.join(known)})")
    return fam.params(**params)


def generate_tasks(family: str, n: int, seed: int, out: str | Path, split: str = SPLITS[0], task: str | None = None,
                   **params) -> list[Path]:
    """Write n samples; returns their folders."""
    fam = get_family(family)
    config = family_params(family, **params)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 99999:
        raise UsageError(f"n: expected an integer in 1..99999, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed: expected an integer >= 0, got {seed!r}")
    if split not in SPLITS:
        raise UsageError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    task = task or fam.name
    if not task or "/" in task or task.startswith("."):
        raise UsageError(f"task: expected a folder name, got {task!r}")
    root = Path(out).expanduser() / split / task
    targets = [root / f"{i:05d}" for i in range(n)]
    taken = [t for t in targets if t.exists()]
    if taken:
        raise UsageError(f"{taken[0]}: already exists; choose another --out or remove it")
    samples = [fam.generate(np.random.default_rng([seed, i]), config) for i in range(n)]  # all drawn before writing
    for sample in samples:
        sample.meta.update(seed=seed)
    return [write_sample(target, sample, fps=FPS) for target, sample in zip(targets, samples)]
