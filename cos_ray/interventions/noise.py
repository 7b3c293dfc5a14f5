"""The paper's noise probes (Fig. 3b): noise at a step vs noise at a frame.

- Noise at step s: at denoising step s every frame's latent is replaced by N(0, I).
- Noise at frame f: latent frame f (an index on the latent's frame axis) is replaced by fresh N(0, I) at every step.
Both are latent edits (`cos_ray.engine.latent_edits`): the edited x_s is what the model sees at step s and what the
scheduler continues from, under Euler and UniPC alike.
`strength` blends instead of replacing: x ← (1 − strength)·x + strength·ε. The noise is seeded per member from
(config seed, member seed), so a probe is reproducible and independent of the batch it runs in.
"""

from __future__ import annotations

from cos_ray.errors import UsageError
from cos_ray.interventions.configs import NoiseAtFrameConfig, NoiseAtStepConfig


class MemberNoise:
    """One CPU generator per member, seeded from (probe seed, member seed): fresh draws, same on any device.

    A draw is made once per step and returned again when the same step asks again: under UniPC an edit is applied
    twice at one step (to the latent the model sees and to the corrector's x_s, `cos_ray.engine.latent_edits`),
    and both must add the same noise."""

    def __init__(self, probe_seed: int, member_seeds: list[int]):
        import torch

        self.generators = [torch.Generator("cpu").manual_seed(probe_seed * 1_000_003 + seed) for seed in member_seeds]
        self._step, self._noise = None, None

    def draw(self, like, step: int):
        """`# like (batch, ...)`: one standard normal draw per member, the same for every call at `step`."""
        import torch

        if self._step != step or self._noise is None or self._noise.shape != like.shape:
            noise = [torch.randn(like.shape[1:], generator=g, dtype=torch.float32) for g in self.generators]
            self._step, self._noise = step, torch.stack(noise)
        return self._noise.to(like.device, like.dtype)


def blend(latents, noise, strength: float):
    return noise if strength == 1.0 else (1.0 - strength) * latents + strength * noise


def noise_at_step_edit(config: NoiseAtStepConfig, member_seeds: list[int]):
    noise = MemberNoise(config.seed, member_seeds)

    def edit(step: int, latents):  # latents: (batch, channels, frames, h, w)
        return blend(latents, noise.draw(latents, step), config.strength) if step == config.step else latents

    return edit


def noise_at_frame_edit(config: NoiseAtFrameConfig, member_seeds: list[int]):
    noise = MemberNoise(config.seed, member_seeds)

    def edit(step: int, latents):  # latents: (batch, channels, frames, h, w)
        if config.frame >= latents.shape[2]:
            raise UsageError(
                f"{config.field}.frame: latent frame {config.frame} is out of range 0-{latents.shape[2] - 1}"
            )
        latents = latents.clone()
        frame = latents[:, :, config.frame]  # (batch, channels, h, w)
        latents[:, :, config.frame] = blend(frame, noise.draw(frame, step), config.strength)
        return latents

    return edit


def apply_noise_at_step(run, config: NoiseAtStepConfig) -> None:
    if config.step >= run.clock.total_steps:
        raise UsageError(f"{config.field}.step: step {config.step} is out of range 0-{run.clock.total_steps - 1}")
    run.latent_edits.add(noise_at_step_edit(config, run.seeds))


def apply_noise_at_frame(run, config: NoiseAtFrameConfig) -> None:
    run.latent_edits.add(noise_at_frame_edit(config, run.seeds))
