"""Per-step records: step, timestep, sigma, expert, and x̂0 = x_s − σ_s·v with v the CFG-combined velocity.

The scheduler's `step(v, t, x_s)` is the one place that sees x_s and the combined velocity together, so the recorder
wraps that method of the run's scheduler instance (UniPC and Euler alike). The first-frame latent is restored in x̂0
only where the pipeline conditions by replacement (`expand_timesteps`, TI2V); A14B conditions by channel concat.
Decoded x̂0 are kept as filmstrips bounded in frames and resolution (50 steps x 81 frames at 480p would be 1.6 Gpx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cos_ray.errors import UsageError

if TYPE_CHECKING:  # the clock imports diffusers; X0Config must stay importable without it (spec validation)
    from cos_ray.engine.clock import StepClock


@dataclass(frozen=True)
class X0Config:
    """Which steps get x̂0, and how much of it is kept."""

    every: int = 1  # x̂0 statistics every k steps (the last step always)
    decode_every: int | None = None  # decode x̂0 into the filmstrip every k steps (None: never)
    keep_latents: bool = False  # keep x̂0 latents whole in memory (tests, probes); else their trace (`x0_trace`)
    max_frames: int = 8  # frames per filmstrip row, evenly spaced, first and last included
    max_side: int = 128  # longest side of a filmstrip frame, in pixels

    def __post_init__(self):
        for name in ("every", "max_frames", "max_side"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"x0.{name}: expected an integer >= 1, got {value!r}")
        if self.decode_every is not None and (not isinstance(self.decode_every, int) or self.decode_every < 1):
            raise UsageError(f"x0.decode_every: expected an integer >= 1 or null, got {self.decode_every!r}")

    def wants(self, step: int, total: int, every: int | None) -> bool:
        return every is not None and (step % every == 0 or step == total - 1)


class StepRecorder:
    """Wraps `scheduler.step` of one run; collects one record per step for every member of the batch."""

    def __init__(self, pipe, clock: StepClock, config: X0Config | None, members: int):
        self.pipe = pipe
        self.clock = clock
        self.config = config
        self.records: list[list[dict]] = [[] for _ in range(members)]
        self.x0_latents: list[dict[int, object]] = [{} for _ in range(members)]
        self.filmstrips: list[list] = [[] for _ in range(members)]
        self.filmstrip_steps: list[int] = []
        self.final_latents = None  # `# (batch, channels, frames, h, w)` after the last step
        self._previous_x0 = None

    def __enter__(self):
        scheduler = self.pipe.scheduler
        original = scheduler.step

        def step(model_output, timestep, sample, *args, **kwargs):
            self._record(model_output, sample)
            result = original(model_output, timestep, sample, *args, **kwargs)
            if self.clock.step == self.clock.total_steps - 1:
                self.final_latents = (result[0] if isinstance(result, tuple) else result.prev_sample).detach()
            return result

        scheduler.step = step
        return self

    def __exit__(self, *exc):
        self.pipe.scheduler.__dict__.pop("step", None)
        return False

    def _record(self, velocity, sample) -> None:
        """velocity, sample: `# (batch, channels, frames, h, w)`."""
        clock, config = self.clock, self.config
        base = {"step": clock.step, "timestep": clock.timestep, "sigma": clock.sigma, "expert": clock.expert}
        want_stats = config is not None and config.wants(clock.step, clock.total_steps, config.every)
        want_decode = config is not None and config.wants(clock.step, clock.total_steps, config.decode_every)
        if not (want_stats or want_decode):
            for records in self.records:
                records.append(dict(base))
            return
        x0 = sample.float() - clock.sigma * velocity.float()  # (batch, channels, frames, h, w)
        if clock.first_frame_latent is not None:
            x0[:, :, 0] = clock.first_frame_latent.float()
        change = None
        if self._previous_x0 is not None:
            change = (x0 - self._previous_x0).flatten(1).norm(dim=1) / x0.flatten(1).norm(dim=1).clamp_min(1e-12)
        self._previous_x0 = x0
        for member, records in enumerate(self.records):
            records.append({
                **base,
                "x0_mean": float(x0[member].mean()),
                "x0_std": float(x0[member].std()),
                "x0_change": None if change is None else float(change[member]),
            })
            kept = x0[member].detach().clone() if config.keep_latents else x0_trace(x0[member])
            self.x0_latents[member][clock.step] = kept
        if want_decode:
            self._decode(x0)

    def _decode(self, x0) -> None:
        strip = decode_filmstrip(self.pipe, x0, self.config.max_frames, self.config.max_side)
        for member in range(len(self.records)):
            self.filmstrips[member].append(strip[member])
        self.filmstrip_steps.append(self.clock.step)


TRACE_VALUES = 1 << 18  # at most this many values of x̂0 kept per step and member without keep_latents (1 MiB)


def x0_trace(latent):
    """x̂0 `# (channels, frames, h, w)` as kept at every recorded step for the exploration measures
    (`cos_ray.probes.exploration`): on the CPU in float32, average-pooled over k x k latent cells (k a power of 2,
    the smallest that fits TRACE_VALUES; tiny presets: k = 1, the latent itself). A14B at 480p, 81 frames: k = 4."""
    import torch.nn.functional as F

    channels, frames, height, width = latent.shape
    k = 1
    while channels * frames * -(-height // k) * -(-width // k) > TRACE_VALUES and k < max(height, width):
        k *= 2
    latent = latent.detach().float()
    if k > 1:
        latent = F.adaptive_avg_pool3d(latent, (frames, -(-height // k), -(-width // k)))
    return latent.cpu().clone()


def decode_filmstrip(pipe, latents, max_frames: int, max_side: int):
    """Decode latents `# (batch, channels, frames, h, w)` into uint8 frames `# (batch, shown, h', w', 3)`."""
    import torch
    import torch.nn.functional as F

    from cos_ray.media import shown_frames

    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(latents.device, vae.dtype)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(latents.device, vae.dtype)
    with torch.inference_mode():
        video = vae.decode(latents.to(vae.dtype) * std + mean, return_dict=False)[0]  # (batch, 3, frames, H, W)
    frames = video.shape[2]
    shown = shown_frames(frames, max_frames)
    video = video[:, :, shown].float().clamp(-1, 1)  # (batch, 3, shown, H, W)
    height, width = video.shape[-2:]
    scale = min(1.0, max_side / max(height, width))
    batch = video.shape[0]
    flat = video.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (batch * shown, 3, H, W)
    if scale < 1.0:
        flat = F.interpolate(flat, size=(max(1, round(height * scale)), max(1, round(width * scale))), mode="area")
    pixels = ((flat + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)  # (batch * shown, h', w', 3)
    return pixels.reshape(batch, len(shown), *pixels.shape[1:]).cpu().numpy()
