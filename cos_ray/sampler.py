"""Sampler settings: one dataclass with the defaults of each model family, every field overridable.

Real checkpoints (a14b, ti2v) default to the authors' protocol - what the paper's tools and the VBVR-Bench
evaluation ran. Each default names the file it comes from:
- D = OpenSenseNova/Demystifying_Video_Reasoning (a DiffSynth-Studio fork): `diffsynth/diffusion/flow_match.py`
  (FlowMatchScheduler.set_timesteps_wan, step), `diffsynth/pipelines/wan_video.py` (WanVideoPipeline.__call__,
  WanVideoUnit_NoiseInitializer), `diffsynth/diffusion/base_pipeline.py` (check_resize_height_width, generate_noise);
- E = `examples/wanvideo/model_training/validate_lora/eval_vbvr_bench.py` of the VBVR-Wan2.2 training repository.
The tiny presets default to settings that run in seconds on a CPU. Pure Python: importing it costs nothing (the
flow-match Euler scheduler itself is built in `cos_ray.engine.schedulers`, from diffusers).
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

# flowmatch-euler: DiffSynth's Wan schedule (D flow_match.py) on diffusers' FlowMatchEulerDiscreteScheduler; unipc:
# diffusers' default for Wan (its corrector rewrites edited latents); euler: diffusers' Euler with its own sigmas.
SCHEDULERS = ("flowmatch-euler", "unipc", "euler")
DEFAULT_FRAMES = 81  # D wan_video.py __call__ num_frames=81: a sample without ground_truth.mp4


@dataclass(frozen=True)
class SamplerSettings:
    """Everything that decides how one trajectory is sampled, apart from the model, the input and the seed."""

    steps: int = 50  # D wan_video.py __call__: num_inference_steps=50
    guidance: float = 5.0  # CFG scale of the high-noise expert (`transformer`); D: cfg_scale=5.0 on both experts
    guidance_2: float = 5.0  # CFG scale of the low-noise expert (`transformer_2`)
    shift: float = 5.0  # flow shift of the sigmas; D: sigma_shift=5.0, shifted 5s / (1 + 4s)
    boundary: float | None = 0.875  # expert switch when timestep < boundary * 1000 (D: switch_DiT_boundary=0.875)
    frames: int | None = None  # 4k+1; None: the sample's ground-truth frame count (E: ffprobe of ground_truth.mp4),
    #                            rounded as D's check_resize_height_width rounds it; 81 without a ground truth
    height: int | None = None  # None: the first frame's own size (E: input_image.height / .width), each side
    width: int | None = None   # rounded up to a multiple of VAE stride x patch (D: check_resize_height_width)
    max_area: int | None = None  # cap on height x width when sized from the first frame (None: no cap, as E)
    fps: int = 16  # E: --fps 16
    negative_prompt: str = WAN_NEGATIVE_PROMPT  # E: Wan's negative prompt
    scheduler: str = "flowmatch-euler"  # D flow_match.py; `unipc` stays available
    max_sequence_length: int = 512

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise UsageError(f"steps: expected an integer >= 1, got {self.steps!r}")
        if self.frames is not None and (not isinstance(self.frames, int) or self.frames < 1
                                        or (self.frames - 1) % 4 != 0):
            raise UsageError(f"frames: expected a count of the form 4k+1 (e.g. 9, 81) or null (the ground truth's), "
                             f"got {self.frames!r}")
        if self.max_area is not None and (not isinstance(self.max_area, int) or self.max_area < 256):
            raise UsageError(f"max_area: expected an integer >= 256 (pixels) or null (no cap), got {self.max_area!r}")
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

    @property
    def nominal_frames(self) -> int:
        """The frame count to plan with before a sample is known (`frames`, else 81)."""
        return self.frames if self.frames is not None else DEFAULT_FRAMES

    def for_sample(self, ground_truth_frames: int | None) -> "SamplerSettings":
        """These settings for one sample: `frames` null becomes its ground truth's count, rounded to 4k+1 as D's
        check_resize_height_width rounds it (81 when the sample has no ground truth)."""
        if self.frames is not None:
            return self
        return dataclasses.replace(self, frames=DEFAULT_FRAMES if ground_truth_frames is None
                                   else round_frames(ground_truth_frames))

    def guidance_for(self, expert: str) -> float:
        """The CFG scale the pipeline applies while `expert` ('high' or 'low') denoises."""
        return self.guidance if expert == "high" else self.guidance_2


def default_settings(family: str) -> SamplerSettings:
    """Defaults for a model family: 'a14b' and 'ti2v' are real checkpoints (the authors' protocol), 'tiny*' the test
    presets."""
    if family == "a14b":
        return SamplerSettings()
    if family == "ti2v":
        # Wan2.2-TI2V-5B: one transformer, 24 fps; otherwise the same protocol (D's pipeline serves both).
        return SamplerSettings(boundary=None, fps=24)
    # The tiny presets keep diffusers' UniPC (what their tests and stores were made with); `scheduler:
    # flowmatch-euler` in a spec (as jobs/paper/* write it) runs them under the authors' schedule.
    if family == "tiny-a14b":
        return SamplerSettings(steps=10, frames=9, height=64, width=64, max_area=64 * 64, max_sequence_length=32,
                               scheduler="unipc")
    if family == "tiny-ti2v":
        return SamplerSettings(steps=10, frames=9, height=64, width=64, max_area=64 * 64, boundary=None,
                               max_sequence_length=32, scheduler="unipc")
    raise UsageError(f"unknown model family {family!r}; expected a14b, ti2v, tiny-a14b or tiny-ti2v")


# Sampler presets: a protocol published with a model, laid over the family's defaults before a spec's own fields
# (`sampler: {preset: NAME, ...}`). Each value names the file it comes from:
# L = github yliuls/Wan2.2-Lightning (the Wan2.2-Lightning release's inference code): `wan/configs/wan_i2v_A14B.py`
#     (sample_steps, sample_shift, boundary, sample_guide_scale), `generate.py` (`--sample_solver` default 'euler',
#     and a warning to use euler with `--lora_dir` "because it's used in distillation"), `wan/utils/fm_solvers_euler.py`
#     (timesteps = linspace(1000, 0, N + 1) shifted by shift*t/(1 + (shift - 1)*t), the last one dropped: the
#     flowmatch-euler schedule), `wan/image2video.py` (high-noise expert while t >= boundary * 1000; guidance 1: one
#     conditional pass, no unconditional one, `use_cfg`).
SAMPLER_PRESETS = {
    "lightning-4step": dict(
        steps=4,  # L wan_i2v_A14B.py: sample_steps = 4 -> timesteps 1000, 937.5, 833.3, 625 at shift 5
        shift=5.0,  # L: sample_shift = 5.0
        guidance=1.0, guidance_2=1.0,  # L: sample_guide_scale = (1.0, 1.0): no CFG, one forward pass per step
        boundary=0.9,  # L: boundary = 0.900 (i2v): steps 0-1 on the high-noise expert, 2-3 on the low-noise one
        scheduler="flowmatch-euler",  # L generate.py: euler, the solver used in distillation
    ),
    # The distilled tiny reasoner (preset model `tiny-reasoner-4step`) under the protocol it was distilled for
    # (training/configs/tiny-reasoner-4step.yaml, cos_ray/training/distill.py): the teacher's CFG is folded into the
    # student, so one conditional pass per step; the student sits in both experts, so the boundary changes nothing.
    "tiny-reasoner-4step": dict(
        steps=4,  # student_steps: 4 -> timesteps 1000, 937.5, 833.3, 625 at shift 5 (distill.knot_sigmas)
        shift=5.0,  # shift: 5.0
        guidance=1.0, guidance_2=1.0,  # the student regressed onto the teacher's CFG-5 trajectory: no uncond pass
        scheduler="flowmatch-euler",  # the student's targets are Euler steps on these sigmas
    ),
}


def preset_settings(name: str, family: str) -> SamplerSettings:
    """The family's defaults with sampler preset `name` laid over them (`SAMPLER_PRESETS`)."""
    if name not in SAMPLER_PRESETS:
        raise UsageError(f"preset: expected one of {', '.join(sorted(SAMPLER_PRESETS))}, got {name!r}")
    return dataclasses.replace(default_settings(family), **SAMPLER_PRESETS[name])


def round_frames(count: int) -> int:
    """A frame count as D's check_resize_height_width makes it 4k+1: kept when count % 4 == 1, else
    (count + 3) // 4 * 4 + 1 (so 80 -> 81, 82..85 -> 85)."""
    if not isinstance(count, int) or count < 1:
        raise UsageError(f"frame count: expected an integer >= 1, got {count!r}")
    return count if count % 4 == 1 else (count + 3) // 4 * 4 + 1


def first_frame_size(image_width: int, image_height: int, multiple: int,
                     max_area: int | None = None) -> tuple[int, int]:
    """(height, width) of a run sized from its first frame: the frame's own sides rounded UP to `multiple` (D's
    check_resize_height_width with E's height=input_image.height), or, when that exceeds `max_area`, the frame's
    aspect fitted within `max_area` (`fit_size`)."""
    height = -(-image_height // multiple) * multiple
    width = -(-image_width // multiple) * multiple
    if max_area is not None and height * width > max_area:
        return fit_size(image_width, image_height, max_area, multiple)
    return height, width


def fit_size(image_width: int, image_height: int, max_area: int, multiple: int) -> tuple[int, int]:
    """(height, width) keeping the first frame's aspect within `max_area` pixels, each a multiple of `multiple`.

    This is Wan's own recipe: the model needs sides divisible by VAE stride x patch size.
    """
    aspect = image_height / image_width
    height = max(multiple, round(math.sqrt(max_area * aspect)) // multiple * multiple)
    width = max(multiple, round(math.sqrt(max_area / aspect)) // multiple * multiple)
    return height, width
