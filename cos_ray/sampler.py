"""Sampler settings: one dataclass with the defaults of each model family, every field overridable.

Real checkpoints default to VBVR-Bench parity (50 UniPC steps, CFG 5.0 on both experts, flow shift 5.0, expert switch
at boundary 0.875, 81 frames at 16 fps, size from the first frame within a 480x832 pixel budget); the tiny preset
defaults to settings that run in seconds on a CPU. Pure Python: importing it costs nothing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from cos_ray.errors import UsageError

# Wan2.2's default negative prompt (used by the official repository and VBVR's evaluation).
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

SCHEDULERS = ("unipc", "euler")


@dataclass(frozen=True)
class SamplerSettings:
    """Everything that decides how one trajectory is sampled, apart from the model, the input and the seed."""

    steps: int = 50
    guidance: float = 5.0  # CFG scale of the high-noise expert (`transformer`)
    guidance_2: float = 5.0  # CFG scale of the low-noise expert (`transformer_2`)
    shift: float = 5.0  # flow shift of the scheduler's sigmas
    boundary: float | None = 0.875  # expert switch at boundary * num_train_timesteps; None: one transformer
    frames: int = 81  # 4k+1
    height: int | None = None  # None: from the first frame within `max_area`
    width: int | None = None
    max_area: int = 480 * 832
    fps: int = 16
    negative_prompt: str = WAN_NEGATIVE_PROMPT
    scheduler: str = "unipc"
    max_sequence_length: int = 512

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise UsageError(f"steps: expected an integer >= 1, got {self.steps!r}")
        if not isinstance(self.frames, int) or self.frames < 1 or (self.frames - 1) % 4 != 0:
            raise UsageError(f"frames: expected a count of the form 4k+1 (e.g. 9, 81), got {self.frames!r}")
        for name in ("guidance", "guidance_2", "shift"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise UsageError(f"{name}: expected a positive number, got {value!r}")
        if self.boundary is not None and not 0.0 <= self.boundary <= 1.0:
            raise UsageError(f"boundary: expected a ratio in [0, 1] or null, got {self.boundary!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 16):
                raise UsageError(f"{name}: expected an integer >= 16 or null (from the first frame), got {value!r}")
        if (self.height is None) != (self.width is None):
            raise UsageError("height/width: give both or neither (neither: sized from the first frame)")
        if self.scheduler not in SCHEDULERS:
            raise UsageError(f"scheduler: expected one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if not isinstance(self.max_sequence_length, int) or self.max_sequence_length < 1:
            raise UsageError(f"max_sequence_length: expected an integer >= 1, got {self.max_sequence_length!r}")

    def replace(self, **overrides) -> "SamplerSettings":
        """A copy with the non-None overrides applied (None means: keep the default)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise UsageError(f"unknown sampler field(s) {sorted(unknown)}; valid: {sorted(self.as_dict())}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def guidance_for(self, expert: str) -> float:
        """The CFG scale the pipeline applies while `expert` ('high' or 'low') denoises."""
        return self.guidance if expert == "high" else self.guidance_2


def default_settings(family: str) -> SamplerSettings:
    """Defaults for a model family: 'a14b' and 'ti2v' are real checkpoints, 'tiny*' the test presets."""
    if family == "a14b":
        return SamplerSettings()
    if family == "ti2v":
        # Wan2.2-TI2V-5B: one transformer, 24 fps, 704x1280 budget in the reference code.
        return SamplerSettings(boundary=None, fps=24, max_area=704 * 1280)
    if family == "tiny-a14b":
        return SamplerSettings(steps=10, frames=9, height=64, width=64, max_area=64 * 64, max_sequence_length=32)
    if family == "tiny-ti2v":
        return SamplerSettings(
            steps=10, frames=9, height=64, width=64, max_area=64 * 64, boundary=None, max_sequence_length=32
        )
    raise UsageError(f"unknown model family {family!r}; expected a14b, ti2v, tiny-a14b or tiny-ti2v")


def fit_size(image_width: int, image_height: int, max_area: int, multiple: int) -> tuple[int, int]:
    """(height, width) keeping the first frame's aspect within `max_area` pixels, each a multiple of `multiple`.

    This is Wan's own recipe: the model needs sides divisible by VAE stride x patch size.
    """
    aspect = image_height / image_width
    height = max(multiple, round(math.sqrt(max_area * aspect)) // multiple * multiple)
    width = max(multiple, round(math.sqrt(max_area / aspect)) // multiple * multiple)
    return height, width
