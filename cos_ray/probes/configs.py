"""The validated parameters of the probes, importable without torch or diffusers (specs are validated early)."""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.errors import UsageError


@dataclass(frozen=True)
class EnergyConfig:
    """Layer activation energy maps: which layers and steps, and the longest side a stored map keeps."""

    layers: object = "0-39"  # layer range, every expert
    steps: object = "0-100%"
    max_side: int = 16
    field: str = "energy"

    def __post_init__(self):
        if not isinstance(self.max_side, int) or isinstance(self.max_side, bool) or self.max_side < 1:
            raise UsageError(f"{self.field}.max_side: expected an integer >= 1, got {self.max_side!r}")
