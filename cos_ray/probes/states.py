"""Capture a state per step for every member: the latent x_s fed to the model, or a block's output (cond branch).

States are kept as token matrices `# (tokens, features)` so that CKA can compare them: latents as
(frames·h·w, channels), block outputs as (seq, dim).
"""

from __future__ import annotations

from diffusers.hooks.hooks import ModelHook

from cos_ray.engine.hook_points import LATENTS, block_module, resolve_hook_point
from cos_ray.engine.parallel import gather_sequence


class _CaptureLatents(ModelHook):
    def __init__(self, capture, clock, channels):
        super().__init__()
        self.capture, self.clock, self.channels = capture, clock, channels

    def pre_forward(self, module, *args, **kwargs):
        if self.clock.branch == "cond":
            hidden = kwargs.get("hidden_states", args[0] if args else None)  # (batch, channels, frames, h, w)
            latents = hidden[:, : self.channels].float()
            for member, state in enumerate(latents.flatten(2).transpose(1, 2)):  # (tokens, channels)
                self.capture.states[member][self.clock.step] = state.detach().cpu().clone()
        return args, kwargs


class _CaptureOutput(ModelHook):
    def __init__(self, capture, clock, expert):
        super().__init__()
        self.capture, self.clock, self.expert = capture, clock, expert

    def post_forward(self, module, output):  # output: (batch, seq, dim); (batch, seq / K, dim) on Ulysses-K ranks
        if self.clock.branch == "cond":
            for member, state in enumerate(gather_sequence(output, self.expert).float()):  # (seq, dim) each
                self.capture.states[member][self.clock.step] = state.detach().cpu().clone()
        return output


class StateCapture:
    """An intervention (`apply(run)`) that records `states[member][step]` for one point: 'latents' or a block
    (a HookPoint or its name)."""

    def __init__(self, point=LATENTS):
        self.point = point
        self.states: list[dict] = []

    def __call__(self, run) -> None:
        self.states = [{} for _ in run.seeds]
        if self.point == LATENTS:
            channels = run.pipe.vae.config.z_dim
            for module in run.experts.values():
                run.hooks.add(module, _CaptureLatents(self, run.clock, channels), "capture.latents")
            return
        points = resolve_hook_point(run.pipe, self.point)
        for point in points:
            run.hooks.add(block_module(run.pipe, point), _CaptureOutput(self, run.clock, run.experts[point.expert]), f"capture.{point.name}")
