"""The validated parameters of every intervention, importable without torch or diffusers.

Specs are validated before anything starts and in processes that never load a model, so the configs live apart from
the hooks that apply them (`ensemble`, `cross_seed`, `noise`, `swap`). Each checks itself in `__post_init__` and names
the field it came from (`field`, e.g. "methods[1].ensemble") in its errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.engine.steps import parse_index_range
from cos_ray.errors import UsageError

MERGE_MODES = ("stream", "update")  # what a cross-seed operator sees: block outputs, or block updates
BRANCHES = ("both", "cond", "uncond")  # CFG passes an intervention acts on


def _check_int(config, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{config.field}.{name}: expected an integer >= {minimum}, got {value!r}")


def _check_choice(config, name: str, label: str, choices) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise UsageError(f"{config.field}.{label}: expected one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class EnsembleConfig:
    """The paper's training-free ensemble: N seeds, mid-layer states merged during the early steps."""

    size: int = 3
    layers: object = "20-29"  # a layer range ("20-29", 20, [20, 25]) applied to every expert
    steps: object = "0-20%"
    merge: str = "stream"
    branch: str = "both"
    field: str = "ensemble"

    def __post_init__(self):
        _check_int(self, "size", 1)
        _check_choice(self, "merge", "merge", MERGE_MODES)
        _check_choice(self, "branch", "branch", BRANCHES)

    def layer_indices(self, num_layers: int) -> tuple[int, ...]:
        return parse_index_range(self.layers, num_layers, f"{self.field}.layers", unit="layer")

    def member_seeds(self, seed: int) -> list[int]:
        """An ensemble of N started at seed S has members S..S+N-1."""
        return list(range(seed, seed + self.size))


def _check_noise(config) -> None:
    if not isinstance(config.strength, (int, float)) or isinstance(config.strength, bool) or not (
        0.0 <= config.strength <= 1.0
    ):
        raise UsageError(f"{config.field}.strength: expected a number in [0, 1], got {config.strength!r}")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool):
        raise UsageError(f"{config.field}.seed: expected an integer, got {config.seed!r}")


@dataclass(frozen=True)
class NoiseAtStepConfig:
    """At denoising step `step`, every frame's latent is replaced by N(0, I) (blended by `strength`)."""

    step: int
    strength: float = 1.0
    seed: int = 0
    field: str = "noise_at_step"

    def __post_init__(self):
        _check_int(self, "step", 0)
        _check_noise(self)


@dataclass(frozen=True)
class NoiseAtFrameConfig:
    """Latent frame `frame` is replaced by fresh N(0, I) at every step (blended by `strength`)."""

    frame: int
    strength: float = 1.0
    seed: int = 0
    field: str = "noise_at_frame"

    def __post_init__(self):
        _check_int(self, "frame", 0)
        _check_noise(self)


@dataclass(frozen=True)
class SwapConfig:
    """At step `step`, block `layer`'s output of run A is replaced by run B's."""

    layer: int
    step: int = 0
    field: str = "swap"

    def __post_init__(self):
        _check_int(self, "layer", 0)
        _check_int(self, "step", 0)
