"""Cross-seed operators: `f(stacked) -> stacked` over the seeds of a group, `# (seeds, seq, dim)`, at block outputs.

Applied at chosen hook points, over a step range and a CFG branch, in one of two modes:
- `stream`: the operator sees each chosen block's output (the whole residual stream) and replaces it;
- `update`: the operator sees each chosen block's update (output − input) and its result is added to each member's
  own input, so the members' streams stay apart.
In process the seeds are the rows of one batch; across Ray workers the same hook calls the group's all-reduce (for
operators that only need the group's sum) or all-gather (any other operator) - see `cos_ray.engine.seeds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from diffusers.hooks.hooks import ModelHook

from cos_ray.engine.clock import StepClock
from cos_ray.engine.hook_points import block_module, resolve_hook_points
from cos_ray.engine.seeds import SeedGroup
from cos_ray.errors import CosRayError, UsageError
from cos_ray.interventions.configs import BRANCHES, MERGE_MODES


class NonFiniteMergeError(CosRayError):
    """A deterministic failure: retrying the same unit would fail the same way."""


class MeanOperator:
    """The seeds' element-wise mean at each token: the training-free ensemble's merge."""

    def __call__(self, stacked):  # (seeds, seq, dim) -> (seeds, seq, dim)
        return stacked.mean(dim=0, keepdim=True).expand_as(stacked)

    def reduce(self, local, group: SeedGroup):
        """The same result from the group's sum alone (one all-reduce instead of an all-gather)."""
        return (group.sum(local) / group.total).unsqueeze(0).expand_as(local)  # (local_seeds, seq, dim)


OPERATORS: dict[str, Callable[[], object]] = {"mean": MeanOperator}


@dataclass(frozen=True)
class CrossSeed:
    """Where and when an operator runs, resolved: concrete hook points, integer steps, a mode and a CFG branch."""

    operator: object  # callable (seeds, seq, dim) -> (seeds, seq, dim); optionally .reduce(local, group)
    points: tuple  # HookPoints (`blocks.N` = every expert)
    steps: frozenset  # step indices
    mode: str = "stream"
    branch: str = "both"
    field: str = "cross_seed"  # the name errors use (e.g. "methods[1].ensemble")

    def __post_init__(self):
        if not callable(self.operator):
            raise UsageError(f"{self.field}.operator: expected a callable f(stacked) -> stacked, got {self.operator!r}")
        if self.mode not in MERGE_MODES:
            raise UsageError(f"{self.field}.merge: expected one of {', '.join(MERGE_MODES)}, got {self.mode!r}")
        if self.branch not in BRANCHES:
            raise UsageError(f"{self.field}.branch: expected one of {', '.join(BRANCHES)}, got {self.branch!r}")


class CrossSeedHook(ModelHook):
    """On one block: applies the operator to its output or update when the clock is in range."""

    def __init__(self, cross: CrossSeed, clock: StepClock, group: SeedGroup, name: str):
        super().__init__()
        self.config, self.steps, self.clock, self.group, self.name = cross, cross.steps, clock, group, name
        self._input = None

    def _active(self) -> bool:
        branch = self.config.branch
        return self.clock.step in self.steps and (branch == "both" or branch == self.clock.branch)

    def pre_forward(self, module, *args, **kwargs):
        if self.config.mode == "update" and self._active():
            self._input = kwargs.get("hidden_states", args[0] if args else None)  # (batch, seq, dim)
        return args, kwargs

    def post_forward(self, module, output):
        if not self._active():
            return output
        # output: (local_seeds, seq, dim)
        local = output - self._input if self.config.mode == "update" else output
        merged = merge(self.config.operator, local.float(), self.group)
        if not merged.isfinite().all():
            # The merged tensor is the same on every member, so every member fails here, together, with this reason.
            raise NonFiniteMergeError(
                f"{self.config.field}: NaN or inf in the merged hidden state at {self.name}, step {self.clock.step} "
                f"({self.clock.branch} branch); the model diverged or an input is broken - not retried"
            )
        merged = merged.to(output.dtype)
        result = self._input + merged if self.config.mode == "update" else merged
        self._input = None
        return result


def merge(operator, local, group: SeedGroup):
    """`# (local_seeds, seq, dim) -> (local_seeds, seq, dim)`: the operator's result for this process's seeds."""
    if hasattr(operator, "reduce"):
        return operator.reduce(local, group)
    stacked = group.gather(local)  # (seeds, seq, dim)
    result = operator(stacked)
    if result.shape != stacked.shape:
        raise UsageError(f"cross-seed operator returned shape {tuple(result.shape)}, expected {tuple(stacked.shape)}")
    return result[group.offset : group.offset + local.shape[0]]


def apply_cross_seed(run, cross: CrossSeed) -> None:
    """Install the operator's hooks for one run (`run`: a `cos_ray.engine.trajectory.RunContext`)."""
    try:
        points = resolve_hook_points(run.pipe, cross.points)
    except UsageError as err:
        raise UsageError(f"{cross.field}.layers: {err}") from err
    for point in points:
        hook = CrossSeedHook(cross, run.clock, run.seed_group, point.name)
        run.hooks.add(block_module(run.pipe, point), hook, f"cross_seed.{point.name}")
