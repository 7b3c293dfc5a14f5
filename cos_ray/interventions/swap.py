"""Latent swap (Fig. 6): during steps S and at layer k, run A takes run B's values at some visual tokens.

B differs from A in its image or prompt and shares its seed. The pipeline takes one image per call, so A and B are
two trajectories. Because the copy goes one way (B is never touched), B runs first with its block captured and A
replays it at the same steps, layer and CFG branch - in one process, with one model. Across Ray workers the same
swap is `CopyOperator(source)`, a cross-seed operator over a group of two running in lockstep.

Two modes (see `SwapConfig`): `update` replaces the block's contribution (output − input) and keeps A's own stream
underneath, so what the later blocks see depends on the layer; `stream` replaces the block's whole output. A
`region` restricts the swap to some tokens: a mask `# (H, W)` over the first frame's pixels, the same every frame.
"""

from __future__ import annotations

from diffusers.hooks.hooks import ModelHook

from cos_ray.engine.hook_points import block_module, resolve_hook_point
from cos_ray.engine.parallel import local_tokens
from cos_ray.errors import UsageError
from cos_ray.interventions.configs import SwapConfig


class CopyOperator:
    """Cross-seed operator: every member takes member `source`'s state `# (seeds, seq, dim)`."""

    def __init__(self, source: int):
        self.source = source

    def __call__(self, stacked):
        return stacked[self.source : self.source + 1].expand_as(stacked)


def token_mask(mask, grid):
    """A pixel mask `# (H, W)` (nonzero: swapped) on the token grid (frames, h, w): `# (seq,)` bool, seq = f·h·w."""
    import torch
    import torch.nn.functional as F

    frames, height, width = grid
    pixels = torch.as_tensor(mask, dtype=torch.float32)[None, None]  # (1, 1, H, W)
    on_grid = F.interpolate(pixels, size=(height, width), mode="area")[0, 0] > 0.5  # (h, w)
    return on_grid.expand(frames, height, width).reshape(-1)  # (seq,)


class _Capture(ModelHook):
    def __init__(self, swap, clock):
        super().__init__()
        self.swap, self.clock = swap, clock
        self._input = None

    def pre_forward(self, module, *args, **kwargs):
        if self.swap.config.mode == "update" and self.clock.step in self.swap.steps:
            self._input = kwargs.get("hidden_states", args[0] if args else None)  # (batch, seq, dim)
        return args, kwargs

    def post_forward(self, module, output):  # (batch, seq, dim)
        if self.clock.step in self.swap.steps:
            value = output - self._input if self.swap.config.mode == "update" else output
            self.swap.captured[(self.clock.step, self.clock.branch)] = value.detach().clone()
            self._input = None
        return output


class _Replace(ModelHook):
    def __init__(self, swap, clock, expert):
        super().__init__()
        self.swap, self.clock, self.expert = swap, clock, expert
        self._input = None

    def pre_forward(self, module, *args, **kwargs):
        if self.swap.config.mode == "update" and self.clock.step in self.swap.steps:
            self._input = kwargs.get("hidden_states", args[0] if args else None)  # (batch, seq, dim)
        return args, kwargs

    def post_forward(self, module, output):  # (batch, seq, dim)
        if self.clock.step not in self.swap.steps:
            return output
        config = self.swap.config
        source = self.swap.captured.get((self.clock.step, self.clock.branch))
        if source is None or source.shape != output.shape:
            raise UsageError(
                f"{config.field}: run B's state at {self.swap.point_name} step {self.clock.step} "
                f"({self.clock.branch}) is {None if source is None else tuple(source.shape)}, run A's is "
                f"{tuple(output.shape)}; the pair must share size, frames and seed count"
            )
        swapped = (self._input + source if config.mode == "update" else source).to(output.dtype)
        self._input = None
        frames, height, width = self.clock.grid
        tokens = self.swap.tokens(self.clock.grid, frames * height * width)
        if tokens is None:
            return swapped
        tokens = local_tokens(tokens, self.expert)  # (seq / K,): this rank's shard on Ulysses-K ranks
        if tokens.shape[0] != output.shape[1]:
            raise UsageError(f"{config.field}.region: the token grid {self.clock.grid} does not match "
                             f"{output.shape[1]} tokens")
        return output.where(~tokens.to(output.device)[None, :, None], swapped)  # (batch, seq, dim)


class LatentSwap:
    """Two interventions: `capture` for run B (first), `replace` for run A (after).

    mask: `# (H, W)` array for a `region` other than `all` (nonzero: the tokens swapped), None for `all`."""

    def __init__(self, config: SwapConfig, mask=None):
        if config.region != "all" and mask is None:
            raise UsageError(f"{config.field}.region: {config.region!r} needs a mask image; none was given")
        self.config = config
        self.mask = mask
        self.captured: dict[tuple[int, str], object] = {}  # (step, branch) -> `# (batch, seq, dim)`
        self.steps: frozenset = frozenset()
        self.point_name = ""
        self._tokens = None

    def tokens(self, grid, seq: int):
        """`# (seq,)` bool: the tokens swapped, or None for all of them."""
        if self.mask is None:
            return None
        if self._tokens is None or self._tokens.shape[0] != seq:
            self._tokens = token_mask(self.mask, grid)
            if self._tokens.shape[0] != seq:
                raise UsageError(f"{self.config.field}.region: the token grid {grid} does not match {seq} tokens")
            if not self._tokens.any():
                raise UsageError(f"{self.config.field}.region: the mask covers no token of the {grid} grid")
        return self._tokens

    def _point(self, run):
        self.steps = frozenset(self.config.resolved(run.clock.total_steps).step)
        # The expert running the step is known only once it runs: hook the layer in every expert, act on the step.
        point = self.config.hook_point()
        self.point_name = point.name
        try:
            return resolve_hook_point(run.pipe, point)
        except UsageError as err:
            raise UsageError(f"{self.config.field}.layer: {err}") from err

    def capture(self, run) -> None:
        self.captured = {}
        for point in self._point(run):
            run.hooks.add(block_module(run.pipe, point), _Capture(self, run.clock), f"swap.capture.{point.name}")

    def replace(self, run) -> None:
        for point in self._point(run):
            run.hooks.add(block_module(run.pipe, point), _Replace(self, run.clock, run.experts[point.expert]), f"swap.replace.{point.name}")
