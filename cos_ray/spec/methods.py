"""`methods:` - what each unit runs: `baseline` (one seed, untouched) or `ensemble` (seeds merged mid-run).

A method is a one-key mapping (`{ensemble: {size: 3}}`) or its bare name. Its `params()` go into the unit id and the
`params` JSON column of the store, so adding a method (the probes issue adds noise and swaps) never changes the
store's schema: add a `MethodSpec` subclass and register it in `METHODS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from cos_ray.spec.fields import SpecNode


class MethodSpec:
    """Base of the methods; `registry` maps the YAML key to the section class."""

    registry: dict = {}
    kind = "method"
    name = ""

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def member_seeds(self, seed: int) -> list[int]:
        return [seed]

    def config(self, path: str):
        """The engine's intervention config (None: no intervention)."""
        return None

    def check_against(self, num_layers: int, steps: int | None, path: str):
        """Problems that need the model and sampler (layer and step ranges): (path, message) pairs."""
        return ()


@dataclass(frozen=True)
class BaselineSpec(MethodSpec, SpecNode):
    """One seed per unit, no intervention: the reference every other method is compared with."""

    name = "baseline"


@dataclass(frozen=True)
class EnsembleSpec(MethodSpec, SpecNode):
    """The paper's ensemble: `size` seeds S..S+size-1, blocks `layers` merged across them during `steps`.

    merge `stream` replaces each chosen block's output (the residual stream) by the seeds' mean - after the first
    merged block every member computes the same thing; `update` averages each block's update (output - input) and adds
    it to each member's own stream, keeping members apart.
    """

    name = "ensemble"
    size: int = 3
    layers: str | int | list[int] = "20-29"
    steps: str | int | list[int] = "0-20%"
    merge: Literal["stream", "update"] = "stream"

    def check(self):
        if self.size < 2:
            yield "size", f"expected an integer >= 2 (an ensemble of one is the baseline), got {self.size}"

    def member_seeds(self, seed: int) -> list[int]:
        return list(range(seed, seed + self.size))

    def config(self, path: str):
        from cos_ray.interventions.configs import EnsembleConfig

        return EnsembleConfig(size=self.size, layers=self.layers, steps=self.steps, merge=self.merge, field=path)

    def check_against(self, num_layers: int, steps: int, path: str):
        from cos_ray.engine.steps import parse_index_range
        from cos_ray.errors import UsageError

        for name, value, count, unit in (("layers", self.layers, num_layers, "layer"), ("steps", self.steps, steps, "step")):
            if count is None:  # the step count is unknown while the sampler section is broken
                continue
            try:
                if not parse_index_range(value, count, f"{path}.{name}", unit=unit):
                    yield f"{path}.{name}", f"selects no {unit}: an ensemble that merges nothing is the baseline"
            except UsageError as err:
                field, _, message = str(err).partition(": ")
                yield field, message


METHODS = {"baseline": BaselineSpec, "ensemble": EnsembleSpec}
MethodSpec.registry = METHODS
