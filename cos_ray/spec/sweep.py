"""The whole spec: one sweep = model x tasks x methods x seeds, with sampler overrides and probes.

`SweepSpec` is one grid point (no `{grid: ...}` left). Cross-section rules that need files - the checkpoint's layer
count, the family's default step count, the task folder - are checked by `load.validate`, which reports them with the
rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from cos_ray.spec.fields import SpecNode
from cos_ray.spec.limits import MAX_SEED
from cos_ray.spec.methods import MethodSpec
from cos_ray.spec.model import ModelSpec
from cos_ray.spec.probes import ProbesSpec
from cos_ray.spec.sampler import SamplerSpec
from cos_ray.spec.tasks import TasksSpec

_SEED_RANGE = re.compile(r"^\s*(\d{1,30})\s*-\s*(\d{1,30})\s*$")


def parse_seeds(seeds) -> Sequence[int]:
    """`[0, 1, 2]`, or an inclusive range `"0-9"` (a `range`: its length is known without listing it); seeds lie in
    0..2^63-1 (int64, as the store and torch keep them). Raises ValueError with what was expected."""
    if isinstance(seeds, str):
        match = _SEED_RANGE.match(seeds)
        if not match or int(match.group(1)) > int(match.group(2)):
            raise ValueError(f"expected a list of integers or an inclusive range like '0-9', got {seeds[:80]!r}")
        first, last = int(match.group(1)), int(match.group(2))
        if last > MAX_SEED:
            raise ValueError(f"expected seeds in 0..{MAX_SEED} (2^63-1), got a range up to {last}")
        return range(first, last + 1)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("expected at least one seed")
    wrong = [seed for seed in seeds if not 0 <= seed <= MAX_SEED]
    if wrong:
        raise ValueError(f"expected seeds in 0..{MAX_SEED} (2^63-1), got {wrong[0]}"
                         + (f" and {len(wrong) - 1} more" if len(wrong) > 1 else ""))
    if len(set(seeds)) != len(seeds):
        shown = str(seeds) if len(seeds) <= 20 else str(seeds[:20])[:-1] + ", ...]"
        raise ValueError(f"expected distinct seeds, got {shown}")
    return seeds


@dataclass(frozen=True)
class SweepSpec(SpecNode):
    """A sweep at one grid point: every (task, method, seed) becomes a unit of work."""

    model: ModelSpec
    tasks: TasksSpec
    methods: list[MethodSpec]
    seeds: list[int] | str = field(default_factory=lambda: [1])  # VBVR's evaluation: seed 1 for every sample
    sampler: SamplerSpec | None = None
    probes: ProbesSpec | None = None
    name: str | None = None  # a label for the sweeps table (default: the spec file's name); not in unit ids
    out: str | None = None  # default store URI (`--out` overrides it); not in unit ids

    def check(self):
        try:
            parse_seeds(self.seeds)
        except ValueError as err:
            yield "seeds", str(err)
        if not self.methods:
            yield "methods", "expected at least one method (baseline, ensemble)"

    @property
    def seed_list(self) -> Sequence[int]:
        return parse_seeds(self.seeds)
