"""Latent swap (Fig. 6): at step s and layer k, run A's visual tokens are replaced by those of run B.

B differs from A in its image or prompt and shares its seed. The pipeline takes one image per call, so A and B are
two trajectories. Because the copy goes one way (B is never touched), B can run first with its block output
captured and A replay it at the same step, layer and CFG branch - in one process, with one model. Across Ray
workers the same swap is `CopyOperator(source)`, a cross-seed operator over a group of two running in lockstep.
"""

from __future__ import annotations

from diffusers.hooks.hooks import ModelHook

from cos_ray.engine.hook_points import block_module, resolve_hook_point
from cos_ray.errors import UsageError
from cos_ray.interventions.configs import SwapConfig


class CopyOperator:
    """Cross-seed operator: every member takes member `source`'s state `# (seeds, seq, dim)`."""

    def __init__(self, source: int):
        self.source = source

    def __call__(self, stacked):
        return stacked[self.source : self.source + 1].expand_as(stacked)


class _Capture(ModelHook):
    def __init__(self, swap, clock):
        super().__init__()
        self.swap, self.clock = swap, clock

    def post_forward(self, module, output):  # (batch, seq, dim)
        if self.clock.step == self.swap.config.step:
            self.swap.captured[self.clock.branch] = output.detach().clone()
        return output


class _Replace(ModelHook):
    def __init__(self, swap, clock):
        super().__init__()
        self.swap, self.clock = swap, clock

    def post_forward(self, module, output):  # (batch, seq, dim)
        if self.clock.step != self.swap.config.step:
            return output
        source = self.swap.captured.get(self.clock.branch)
        if source is None or source.shape != output.shape:
            raise UsageError(
                f"{self.swap.config.field}: run B's state at {self.swap.point_name} step {self.swap.config.step} "
                f"({self.clock.branch}) is {None if source is None else tuple(source.shape)}, run A's is "
                f"{tuple(output.shape)}; the pair must share size, frames and seed count"
            )
        return source.to(output.dtype)


class LatentSwap:
    """Two interventions: `capture` for run B (first), `replace` for run A (after)."""

    def __init__(self, config: SwapConfig):
        self.config = config
        self.captured: dict[str, object] = {}
        self.point_name = ""

    def _point(self, run):
        if self.config.step >= run.clock.total_steps:
            raise UsageError(f"{self.config.field}.step: step {self.config.step} is out of range 0-{run.clock.total_steps - 1}")
        # The expert running the step is known only once it runs: hook the layer in every expert, act on the step.
        self.point_name = f"blocks.{self.config.layer}"
        try:
            return resolve_hook_point(run.pipe, self.point_name)
        except UsageError as err:
            raise UsageError(f"{self.config.field}.layer: {err}") from err

    def capture(self, run) -> None:
        self.captured = {}
        for point in self._point(run):
            run.hooks.add(block_module(run.pipe, point), _Capture(self, run.clock), f"swap.capture.{point.name}")

    def replace(self, run) -> None:
        for point in self._point(run):
            run.hooks.add(block_module(run.pipe, point), _Replace(self, run.clock), f"swap.replace.{point.name}")
