"""The paper's training-free ensemble: several seeds, their mid-layer hidden states merged during the early steps.

Defaults follow the paper where it is explicit (3 seeds, layers 20-29) and are parameters where it is not (the
first 20% of steps, the element-wise mean at each token); they live in `EnsembleConfig`. Two merge modes (see
`cross_seed`):
- `stream` replaces each chosen block's output by the seeds' mean. With the same conditioning for every seed, every
  block after the first averaged one then computes identical outputs for every member: the whole velocity of that
  step is shared, and a contiguous range "20-29" acts as "20".
- `update` averages each chosen block's update (output − input) and adds it to each member's own stream, so the
  members stay apart and every layer of the range counts.
"""

from __future__ import annotations

from cos_ray.interventions.configs import EnsembleConfig

__all__ = ["EnsembleConfig", "apply_ensemble"]


def apply_ensemble(run, config: EnsembleConfig) -> None:
    """Install the mean over the run's seed group at the configured layers and steps."""
    from cos_ray.interventions.cross_seed import CrossSeed, MeanOperator, apply_cross_seed

    num_layers = min(len(expert.blocks) for expert in run.experts.values())
    config = config.resolved(num_layers, run.clock.total_steps)
    if not config.layers:
        return
    apply_cross_seed(run, CrossSeed(
        operator=MeanOperator(), points=tuple(config.hook_points()), steps=frozenset(config.steps),
        mode=config.merge, branch=config.branch, field=config.field,
    ))
