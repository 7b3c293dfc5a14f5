"""The schedulers a run can sample with, built from the checkpoint's scheduler config (see `cos_ray.sampler`).

`flowmatch-euler` is DiffSynth's Wan schedule - the one the paper's tools and the VBVR evaluation ran
(OpenSenseNova/Demystifying_Video_Reasoning, `diffsynth/diffusion/flow_match.py`, `set_timesteps_wan` and `step`):

    sigmas    = linspace(1, 0, N + 1)[:-1]        (float32)
    sigmas    = shift * sigmas / (1 + (shift - 1) * sigmas)
    timesteps = 1000 * sigmas
    x        <- x + v * (sigma_next - sigma),      the last step to sigma = 0

It is diffusers' own FlowMatchEulerDiscreteScheduler (same shift formula, same Euler step, terminal sigma 0); the
only thing diffusers cannot be told through the Wan pipeline is the unshifted sigmas, since the pipeline calls
`set_timesteps(num_inference_steps)` without them. `WanFlowMatchEuler` supplies them there and nothing else.
"""

from __future__ import annotations

from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler


def wan_sigmas(steps: int):
    """DiffSynth's unshifted Wan sigmas: `torch.linspace(1, 0, steps + 1)[:-1]` in float32, `# (steps,)`."""
    import torch

    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float32)[:-1]


class WanFlowMatchEuler(FlowMatchEulerDiscreteScheduler):
    """diffusers' flow-match Euler scheduler on DiffSynth's Wan sigmas (when no sigmas are passed)."""

    def set_timesteps(self, num_inference_steps=None, device=None, sigmas=None, mu=None, timesteps=None):
        if sigmas is None and timesteps is None and num_inference_steps is not None:
            sigmas = wan_sigmas(num_inference_steps).numpy()
        super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, mu=mu, timesteps=timesteps)


# Settings that would make diffusers' Euler depart from DiffSynth's schedule; forced off for flowmatch-euler.
_PLAIN_EULER = dict(use_dynamic_shifting=False, shift_terminal=None, use_karras_sigmas=False,
                    use_exponential_sigmas=False, use_beta_sigmas=False, invert_sigmas=False,
                    stochastic_sampling=False, num_train_timesteps=1000)


def make_scheduler_from_config(config, name: str, shift: float):
    """A fresh scheduler `name` (cos_ray.sampler.SCHEDULERS) from a checkpoint's scheduler config."""
    if name == "flowmatch-euler":
        return WanFlowMatchEuler.from_config(config, shift=shift, **_PLAIN_EULER)
    if name == "euler":
        return FlowMatchEulerDiscreteScheduler.from_config(config, shift=shift)
    return UniPCMultistepScheduler.from_config(config, flow_shift=shift)
