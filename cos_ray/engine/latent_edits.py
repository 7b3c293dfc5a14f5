"""Edits of the latent x_s before the model sees step s (noise at a step, noise at a frame).

They act on the pipeline's own `latents` variable: step 0's through the `latents` argument (drawn here with the
pipeline's generators, exactly as it would draw them), later steps' through `callback_on_step_end`. This is the
natural "replace the latent in the loop" of the paper's probes. Note that UniPC's corrector then recomputes x_s from
the previous sample and the new model output, so part of an injection is corrected away; Euler keeps it whole.
"""

from __future__ import annotations

from typing import Callable

LatentEdit = Callable[[int, object], object]  # (step, latents `# (batch, channels, frames, h, w)`) -> latents


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
        """Route the pipeline's latents through the edits (no-op when there are none)."""
        if not self.edits:
            return
        arguments["latents"] = self.apply(0, initial_noise(pipe, arguments))

        def callback(pipe, step, timestep, tensors):
            if step + 1 < self.total_steps:
                return {"latents": self.apply(step + 1, tensors["latents"])}
            return {}

        arguments["callback_on_step_end"] = callback


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
