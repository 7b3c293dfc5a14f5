"""The one resolved config of every method the engine runs, importable without torch or diffusers.

Each method has exactly one config here: its defaults and its validation live in the dataclass alone (`__post_init__`,
as diffusers' hook configs do), the spec (`cos_ray.spec.methods`) parses YAML into it, the engine runs it, and its
`params()` (a canonical JSON-able dict) is what a unit id hashes. Ranges are resolved once: `resolved(num_layers,
total_steps)` turns a percentage (`0-20%`) into the integer steps of a run of that length, and the spec resolves
every unit's config before it is hashed, so `0-20%` and `0-9` of 50 steps are the same unit. Errors name the field
the value came from (`field`, e.g. "methods[1].ensemble").

The hooks that apply the configs live beside them (`ensemble`, `cross_seed`, `noise`, `swap`); the engine calls
them through `config.apply(run)` and never imports them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cos_ray.engine.hook_points import HookPoint, every_expert
from cos_ray.engine.steps import is_resolved, normalize_index_range, parse_index_range
from cos_ray.errors import UsageError

MERGE_MODES = ("stream", "update")  # what a cross-seed operator (or a swap) sees: block outputs, or block updates
BRANCHES = ("both", "cond", "uncond")  # CFG passes an intervention acts on
REGIONS = ("all", "foreground")  # tokens a swap replaces (or a path to a mask image)
NOISE_SEED = 1  # not 0: the noise generator is seeded with seed * 1000003 + run seed, for 0 the run's own seed


def where(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def check_int(config, name: str, minimum: int, why: str = "") -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{where(config.field, name)}: expected an integer >= {minimum}{why}, got {value!r}")


def check_choice(config, name: str, choices) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise UsageError(f"{where(config.field, name)}: expected one of {', '.join(choices)}, got {value!r}")


def _range(config, name: str, unit: str) -> None:
    """Normalize a range field in place: indices and lists as integer tuples, text checked and kept until resolved."""
    object.__setattr__(config, name, normalize_index_range(getattr(config, name), where(config.field, name), unit))


def _as_list(value):
    return list(value) if is_resolved(value) else value


@dataclass(frozen=True)
class EnsembleConfig:
    """The paper's training-free ensemble: `size` seeds S..S+size-1 (3 in the paper), blocks `layers` (20-29) of
    every expert merged across them during `steps` (the first 20%: not published, a parameter) by the element-wise
    mean; `merge` says what is averaged - `stream`: the block's output, `update`: output - input (see `cross_seed`)."""

    size: int = 3
    layers: object = "20-29"  # every expert's blocks: a range, an index or a list (integers once resolved)
    steps: object = "0-20%"  # a range, an index, a list or a percentage of the run (integers once resolved)
    merge: str = "stream"
    branch: str = "both"
    field: str = "ensemble"

    def __post_init__(self):
        check_int(self, "size", 2, " (an ensemble of one is the baseline)")
        check_choice(self, "merge", MERGE_MODES)
        check_choice(self, "branch", BRANCHES)
        _range(self, "layers", "layer")
        _range(self, "steps", "step")

    def resolved(self, num_layers: int, total_steps: int) -> "EnsembleConfig":
        """This config with integer layers and steps, checked against a model of `num_layers` blocks per expert and
        a run of `total_steps` steps."""
        layers = parse_index_range(self.layers, num_layers, where(self.field, "layers"), unit="layer")
        steps = parse_index_range(self.steps, total_steps, where(self.field, "steps"))
        return dataclasses.replace(self, layers=layers, steps=steps)

    def hook_points(self) -> list[HookPoint]:
        return every_expert(self.layers)

    def member_seeds(self, seed: int) -> list[int]:
        """An ensemble of N started at seed S has members S..S+N-1."""
        return list(range(seed, seed + self.size))

    def params(self) -> dict:
        """The canonical dict a unit id hashes (branch only when not the default, so older ids stay)."""
        out = {"size": self.size, "layers": _as_list(self.layers), "steps": _as_list(self.steps), "merge": self.merge}
        if self.branch != "both":
            out["branch"] = self.branch
        return out

    def apply(self, run) -> None:
        """Install the merge on a run (`cos_ray.engine.trajectory.RunContext`)."""
        from cos_ray.interventions.ensemble import apply_ensemble

        apply_ensemble(run, self)


def _check_noise(config) -> None:
    strength = config.strength
    if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not 0.0 < strength <= 1.0:
        raise UsageError(f"{where(config.field, 'strength')}: expected a number in (0, 1] (1: replace by noise, "
                         f"less: blend), got {strength!r}")
    object.__setattr__(config, "strength", float(strength))
    check_int(config, "seed", 0)


@dataclass(frozen=True)
class NoiseAtStepConfig:
    """Noise at step: at denoising step `step`, every frame's latent x_s is replaced by N(0, I) (blended by
    `strength`) - both what the model sees at that step and what the scheduler continues from."""

    step: int
    strength: float = 1.0
    seed: int = NOISE_SEED
    field: str = "noise_at_step"

    def __post_init__(self):
        check_int(self, "step", 0)
        _check_noise(self)

    def params(self) -> dict:
        return {"step": self.step, "strength": self.strength, "seed": self.seed}

    def apply(self, run) -> None:
        from cos_ray.interventions.noise import apply_noise_at_step

        apply_noise_at_step(run, self)


@dataclass(frozen=True)
class NoiseAtFrameConfig:
    """Noise at frame: latent frame `frame` is replaced by fresh N(0, I) at every step (blended by `strength`)."""

    frame: int
    strength: float = 1.0
    seed: int = NOISE_SEED
    field: str = "noise_at_frame"

    def __post_init__(self):
        check_int(self, "frame", 0)
        _check_noise(self)

    def params(self) -> dict:
        return {"frame": self.frame, "strength": self.strength, "seed": self.seed}

    def apply(self, run) -> None:
        from cos_ray.interventions.noise import apply_noise_at_frame

        apply_noise_at_frame(run, self)


@dataclass(frozen=True)
class SwapConfig:
    """Latent swap: during `steps`, block `layer` of run A takes run B's values (every expert, every CFG branch).

    `mode`: `update` (the default) replaces only the block's contribution, output - input, so the later blocks still
    process A's own stream and the layer matters; `stream` replaces the whole output (the residual stream) - with a
    shared prompt, from that block on A computes B's values whatever the layer (a flat curve by construction).
    `region`: the tokens replaced - `all`, `foreground` (the task's foreground_mask.png) or the path of a mask image.
    """

    layer: int
    step: object = 0  # one step, or several (a range like "0-4" is accepted)
    mode: str = "update"
    region: str = "all"
    field: str = "swap"

    def __post_init__(self):
        check_int(self, "layer", 0)
        check_choice(self, "mode", MERGE_MODES)
        if not isinstance(self.region, str) or not self.region.strip():
            raise UsageError(f"{where(self.field, 'region')}: expected all, foreground or the path of a mask image, "
                             f"got {self.region!r}")
        _range(self, "step", "step")
        if is_resolved(self.step) and not self.step:
            raise UsageError(f"{where(self.field, 'step')}: selects no step: a swap that swaps nothing is the run")

    def resolved(self, total_steps: int) -> "SwapConfig":
        """Integer steps for a run of `total_steps` (the layer is checked where it is hooked, against the model)."""
        return dataclasses.replace(self, step=parse_index_range(self.step, total_steps, where(self.field, "step")))

    def hook_point(self) -> HookPoint:
        return HookPoint(None, self.layer)

    def params(self) -> dict:
        """Canonical dict: one step as an integer (as before), several as a list; mode and region always."""
        step = self.step[0] if is_resolved(self.step) and len(self.step) == 1 else _as_list(self.step)
        return {"layer": self.layer, "step": step, "mode": self.mode, "region": self.region}
