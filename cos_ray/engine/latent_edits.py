"""Edits of the latent x_s at step s (noise at a step, noise at a frame, any edit of x_s), exact under every scheduler.

An edit must change both what the model sees at step s and what the scheduler continues from. The pipeline's own
`latents` variable is what the model sees: step 0's is set through the `latents` argument (drawn here with the
pipeline's generators, exactly as it would draw them), later steps' through `callback_on_step_end`. That is all an
Euler scheduler needs (x_{s+1} = x_s + (σ_{s+1} − σ_s)·v is computed from that very variable).

UniPC is multistep: at step s its corrector rebuilds x_s from its own `last_sample` (x_{s-1}) and the model outputs
(diffusers 0.42.1 `UniPCMultistepScheduler.step`, `multistep_uni_c_bh_update`), and continues from that corrected
x_s - an edit made only in the callback reaches the model but is then thrown away. Here the same edit is also applied
to the corrector's result, so `last_sample` and the predictor continue from the edited x_s (a full replacement is then
the very same tensor the model saw; a blend is applied to the corrected x_s with the same noise). Edits must
therefore be functions of (step, latents) that give the same draw when called twice at one step (see
`cos_ray.interventions.noise`). A scheduler that is neither is refused, naming those that work.
"""

from __future__ import annotations

from typing import Callable

from cos_ray.errors import UsageError

LatentEdit = Callable[[int, object], object]  # (step, latents `# (batch, channels, frames, h, w)`) -> latents
EXACT_SCHEDULERS = "euler, flowmatch-euler or unipc"


class LatentEdits:
    def __init__(self, total_steps: int):
        self.total_steps = total_steps
        self.edits: list[LatentEdit] = []

    def add(self, edit: LatentEdit) -> None:
        self.edits.append(edit)

    def apply(self, step: int, latents):
        for edit in self.edits:
            latents = edit(step, latents)
        return latents

    def install(self, pipe, arguments: dict) -> None:
        """Route the pipeline's latents (and the scheduler's own state) through the edits; no-op when there are none."""
        if not self.edits:
            return
        scheduler_continues_from_edits(pipe.scheduler, self)
        arguments["latents"] = self.apply(0, initial_noise(pipe, arguments))

        def callback(pipe, step, timestep, tensors):
            if step + 1 < self.total_steps:
                return {"latents": self.apply(step + 1, tensors["latents"])}
            return {}

        arguments["callback_on_step_end"] = callback


def scheduler_continues_from_edits(scheduler, edits: LatentEdits) -> None:
    """Make the scheduler continue from the edited x_s: nothing to do for Euler, the corrector's output for UniPC.

    The wrapper lives on this scheduler instance only (a run builds a fresh scheduler, `cos_ray.engine.call`)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return
    if isinstance(scheduler, UniPCMultistepScheduler):
        corrector = scheduler.multistep_uni_c_bh_update

        def corrected(*args, **kwargs):  # runs at the start of step s (step_index = s), before the predictor
            sample = corrector(*args, **kwargs)  # (batch, channels, frames, h, w): UniPC's corrected x_s
            return edits.apply(scheduler.step_index, sample)

        scheduler.multistep_uni_c_bh_update = corrected
        return
    raise UsageError(f"sampler.scheduler: latent edits (noise at a step or frame) take effect exactly only under "
                     f"{EXACT_SCHEDULERS}; this run uses {type(scheduler).__name__} - set sampler.scheduler to one of "
                     "those")


def initial_noise(pipe, arguments: dict):
    """The noise the pipeline would draw itself: `# (batch, z_dim, latent_frames, h, w)` float32."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    generators = arguments["generator"]
    shape = (
        len(generators),
        pipe.vae.config.z_dim,
        (arguments["num_frames"] - 1) // pipe.vae_scale_factor_temporal + 1,
        arguments["height"] // pipe.vae_scale_factor_spatial,
        arguments["width"] // pipe.vae_scale_factor_spatial,
    )
    return randn_tensor(shape, generator=generators, device=pipe._execution_device, dtype=torch.float32)
