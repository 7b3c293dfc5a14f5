"""Where the denoising loop is: step index, timestep, sigma, expert and CFG branch, for every hook to read.

A `ClockHook` on each expert advances the clock. The branch comes from diffusers' own `cache_context("cond" |
"uncond")` that the Wan pipelines wrap each denoiser call in (a stateful hook receives it); the step advances on each
`cond` call, which the pipeline makes first at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.hooks.hooks import BaseState, ModelHook, StateManager


@dataclass
class StepClock:
    total_steps: int
    sigmas: object = None  # the scheduler's sigmas, `# (steps + 1,)`
    step: int = -1
    timestep: float = float("nan")
    sigma: float = float("nan")
    expert: str = ""
    branch: str = ""
    first_frame_latent: object = None  # `# (batch, channels, h, w)`, only for expand_timesteps (TI2V) models
    grid: tuple = ()  # (frames, h, w) of the token grid after patching: seq = frames * h * w


class _NoState(BaseState):
    def reset(self, *args, **kwargs) -> None:
        pass


class ClockHook(ModelHook):
    """Advances the clock before each denoiser call of one expert."""

    _is_stateful = True  # so that the pipeline's cache_context reaches this hook

    def __init__(self, clock: StepClock, expert: str, latent_channels: int, expand_timesteps: bool, patch_size):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.clock = clock
        self.expert = expert
        self.latent_channels = latent_channels
        self.expand_timesteps = expand_timesteps
        self.context = StateManager(_NoState)

    def pre_forward(self, module, *args, **kwargs):
        clock = self.clock
        branch = self.context._context.name if self.context._context is not None else "cond"
        if branch == "cond":
            clock.step += 1
            timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
            clock.timestep = float(timestep.max())
            clock.sigma = float(clock.sigmas[clock.step]) if clock.sigmas is not None else float("nan")
            hidden = kwargs.get("hidden_states", args[0] if args else None)  # (batch, channels, frames, h, w)
            clock.grid = tuple(size // patch for size, patch in zip(hidden.shape[2:], self.patch_size))
            if self.expand_timesteps:
                clock.first_frame_latent = hidden[:, : self.latent_channels, 0]
        clock.expert = self.expert
        clock.branch = branch
        return args, kwargs

    def reset_state(self, module):
        return module
