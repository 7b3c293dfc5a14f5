"""Names for every place a hook can go, TransformerLens-style: `high.blocks.20`, `low.blocks.20`, `blocks.20`.

`high` is the high-noise expert (`transformer`), `low` the low-noise one (`transformer_2`); `blocks.N` names block N
of every expert the model has. A hook point is a block's output: the residual stream `# (batch, seq, dim)`.
`latents` names the latent x_s the model is fed (for the probes that read it).

This module is the one place the grammar is parsed (`HookPoint.parse`) and written (`HookPoint.name`); everything
else (spec, interventions, probes, store rows) passes `HookPoint` objects. It imports neither torch nor diffusers,
so specs are validated with it before anything loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cos_ray.errors import UsageError

EXPERT_ATTRIBUTES = {"high": "transformer", "low": "transformer_2"}
LATENTS = "latents"
GRAMMAR = "'high.blocks.20', 'low.blocks.20' or 'blocks.20' (block 20 of every expert)"
_NAME = re.compile(r"^(?:(high|low)\.)?blocks\.(\d+)$")


@dataclass(frozen=True)
class HookPoint:
    """Block `layer`'s output in expert `expert` ("high" | "low"), or in every expert when `expert` is None."""

    expert: str | None
    layer: int

    def __post_init__(self):
        if self.expert is not None and self.expert not in EXPERT_ATTRIBUTES:
            raise UsageError(f"hook point expert: expected one of {', '.join(EXPERT_ATTRIBUTES)} or none, "
                             f"got {self.expert!r}")
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or self.layer < 0:
            raise UsageError(f"hook point layer: expected an integer >= 0, got {self.layer!r}")

    @classmethod
    def parse(cls, text, field: str = "hook point") -> "HookPoint":
        """`high.blocks.20` -> HookPoint('high', 20); `blocks.20` -> HookPoint(None, 20)."""
        if isinstance(text, HookPoint):
            return text
        match = _NAME.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise UsageError(f"{field}: expected {GRAMMAR}, got {text!r}")
        return cls(match.group(1), int(match.group(2)))

    @classmethod
    def is_name(cls, text) -> bool:
        return isinstance(text, str) and _NAME.match(text.strip()) is not None

    @property
    def name(self) -> str:
        return f"{self.expert}.blocks.{self.layer}" if self.expert else f"blocks.{self.layer}"

    def sort_key(self) -> tuple:
        return (self.expert or "", self.layer)

    def __str__(self) -> str:
        return self.name


def every_expert(layers) -> list[HookPoint]:
    """`blocks.N` for each layer N: the same block of every expert."""
    return [HookPoint(None, int(layer)) for layer in layers]


def experts_of(pipe) -> dict[str, object]:
    """{'high': transformer[, 'low': transformer_2]}: the experts a pipeline actually has."""
    return {expert: getattr(pipe, attr) for expert, attr in EXPERT_ATTRIBUTES.items() if getattr(pipe, attr, None) is not None}


def valid_names(pipe) -> str:
    parts = [f"{expert}.blocks.0-{len(module.blocks) - 1}" for expert, module in experts_of(pipe).items()]
    layers = min(len(module.blocks) for module in experts_of(pipe).values())
    return ", ".join(parts + [f"blocks.0-{layers - 1} (every expert)"])


def point_problems(point: HookPoint, num_layers: int, experts=("high", "low")) -> list[str]:
    """Why `point` does not exist in a model of `num_layers` blocks per expert with `experts` (no model needed)."""
    problems = []
    if point.layer >= num_layers:
        problems.append(f"layer {point.layer} is out of range 0-{num_layers - 1}")
    if point.expert is not None and point.expert not in experts:
        problems.append(f"this model has no {point.expert!r} expert (it has {', '.join(experts)}; or use 'blocks.N')")
    return problems


def resolve_hook_point(pipe, point) -> list[HookPoint]:
    """The concrete hook points (one per expert) a HookPoint or name addresses; an unknown name or a layer out of
    range lists what is valid."""
    experts = experts_of(pipe)
    try:
        parsed = HookPoint.parse(point)
    except UsageError:
        raise UsageError(f"unknown hook point {point!r}; valid: {valid_names(pipe)}") from None
    chosen = [parsed.expert] if parsed.expert else list(experts)
    points = []
    for key in chosen:
        if key not in experts:
            raise UsageError(f"hook point {parsed.name!r}: this model has no {key!r} expert; "
                             f"valid: {valid_names(pipe)}")
        if parsed.layer >= len(experts[key].blocks):
            raise UsageError(f"hook point {parsed.name!r}: layer {parsed.layer} is out of range; "
                             f"valid: {valid_names(pipe)}")
        points.append(HookPoint(key, parsed.layer))
    return points


def resolve_hook_points(pipe, points) -> list[HookPoint]:
    """Concrete hook points of several HookPoints or names, deduplicated, by expert then layer."""
    found = {concrete for point in points for concrete in resolve_hook_point(pipe, point)}
    return sorted(found, key=HookPoint.sort_key)


def block_module(pipe, point: HookPoint):
    return experts_of(pipe)[point.expert].blocks[point.layer]
