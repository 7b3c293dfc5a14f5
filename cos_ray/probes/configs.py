"""The one config of each probe, importable without torch or diffusers (specs are validated early).

As with the methods (`cos_ray.interventions.configs`), defaults and validation live here alone; the spec resolves
ranges once (`resolved(num_layers, total_steps)`) and a unit's identity is the config's `params()`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cos_ray.engine.hook_points import HookPoint, every_expert
from cos_ray.engine.steps import is_resolved, normalize_index_range, parse_index_range
from cos_ray.interventions.configs import check_int, where


@dataclass(frozen=True)
class EnergyConfig:
    """Layer activation energy maps: which layers (every expert) and steps, and the longest side a stored map keeps.

    Defaults: every layer and every step of the model and run at hand (`0-100%`, resolved against them)."""

    layers: object = "0-100%"
    steps: object = "0-100%"
    max_side: int = 16
    field: str = "energy"

    def __post_init__(self):
        check_int(self, "max_side", 1)
        object.__setattr__(self, "layers", normalize_index_range(self.layers, where(self.field, "layers"), "layer"))
        object.__setattr__(self, "steps", normalize_index_range(self.steps, where(self.field, "steps"), "step"))

    def resolved(self, num_layers: int, total_steps: int, every: int = 1) -> "EnergyConfig":
        """Integer layers and steps; `every`: keep every k-th chosen step (and the last of them)."""
        layers = parse_index_range(self.layers, num_layers, where(self.field, "layers"), unit="layer")
        chosen = list(parse_index_range(self.steps, total_steps, where(self.field, "steps")))
        kept = chosen[::every]
        if chosen and kept[-1] != chosen[-1]:
            kept.append(chosen[-1])
        return dataclasses.replace(self, layers=layers, steps=tuple(kept))

    def hook_points(self) -> list[HookPoint]:
        return every_expert(self.layers)

    def params(self) -> dict:
        """{'layers': [...], 'steps': [...], 'max_side': n}: what a unit id hashes."""
        as_list = lambda value: list(value) if is_resolved(value) else value  # noqa: E731
        return {"layers": as_list(self.layers), "steps": as_list(self.steps), "max_side": self.max_side}
