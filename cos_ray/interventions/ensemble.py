"""The paper's training-free ensemble: several seeds, their mid-layer hidden states merged during the early steps.

Defaults follow the paper where it is explicit (3 seeds, layers 20-29) and are parameters where it is not (the
first 20% of steps, the element-wise mean at each token). Two merge modes (see `cross_seed`):
- `stream` replaces each chosen block's output by the seeds' mean. With the same conditioning for every seed, every
  block after the first averaged one then computes identical outputs for every member: the whole velocity of that
  step is shared, and a contiguous range "20-29" acts as "20".
- `update` averages each chosen block's update (output − input) and adds it to each member's own stream, so the
  members stay apart and every layer of the range counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.engine.steps import parse_index_range
from cos_ray.errors import UsageError
from cos_ray.interventions.cross_seed import BRANCHES, MODES, CrossSeedConfig, MeanOperator, apply_cross_seed


@dataclass(frozen=True)
class EnsembleConfig:
    size: int = 3
    layers: object = "20-29"  # a layer range ("20-29", 20, [20, 25]) applied to every expert
    steps: object = "0-20%"
    merge: str = "stream"
    branch: str = "both"
    field: str = "ensemble"

    def __post_init__(self):
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise UsageError(f"{self.field}.size: expected an integer >= 1, got {self.size!r}")
        if self.merge not in MODES:
            raise UsageError(f"{self.field}.merge: expected one of {', '.join(MODES)}, got {self.merge!r}")
        if self.branch not in BRANCHES:
            raise UsageError(f"{self.field}.branch: expected one of {', '.join(BRANCHES)}, got {self.branch!r}")

    def layer_indices(self, num_layers: int) -> tuple[int, ...]:
        return parse_index_range(self.layers, num_layers, f"{self.field}.layers", unit="layer")

    def member_seeds(self, seed: int) -> list[int]:
        """An ensemble of N started at seed S has members S..S+N-1."""
        return list(range(seed, seed + self.size))


def apply_ensemble(run, config: EnsembleConfig) -> None:
    """Install the mean over the run's seed group at the configured layers and steps."""
    num_layers = min(len(expert.blocks) for expert in run.experts.values())
    layers = config.layer_indices(num_layers)
    if not layers:
        return
    apply_cross_seed(run, CrossSeedConfig(
        operator=MeanOperator(), points=tuple(f"blocks.{layer}" for layer in layers), steps=config.steps,
        mode=config.merge, branch=config.branch, field=config.field,
    ))
