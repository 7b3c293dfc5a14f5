"""Names for every place a hook can go, TransformerLens-style: `high.blocks.20`, `low.blocks.20`, `blocks.20`.

`high` is the high-noise expert (`transformer`), `low` the low-noise one (`transformer_2`); `blocks.N` names block N
of every expert the model has. A hook point is a block's output: the residual stream `# (batch, seq, dim)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cos_ray.errors import UsageError

EXPERT_ATTRIBUTES = {"high": "transformer", "low": "transformer_2"}
_NAME = re.compile(r"^(?:(high|low)\.)?blocks\.(\d+)$")


@dataclass(frozen=True, order=True)
class HookPoint:
    expert: str  # "high" | "low"
    layer: int

    @property
    def name(self) -> str:
        return f"{self.expert}.blocks.{self.layer}"


def experts_of(pipe) -> dict[str, object]:
    """{'high': transformer[, 'low': transformer_2]}: the experts a pipeline actually has."""
    return {expert: getattr(pipe, attr) for expert, attr in EXPERT_ATTRIBUTES.items() if getattr(pipe, attr, None) is not None}


def valid_names(pipe) -> str:
    parts = [f"{expert}.blocks.0-{len(module.blocks) - 1}" for expert, module in experts_of(pipe).items()]
    layers = min(len(module.blocks) for module in experts_of(pipe).values())
    return ", ".join(parts + [f"blocks.0-{layers - 1} (every expert)"])


def resolve_hook_point(pipe, name: str) -> list[HookPoint]:
    """The hook points a name addresses; an unknown name or a layer out of range lists what is valid."""
    match = _NAME.match(name.strip()) if isinstance(name, str) else None
    experts = experts_of(pipe)
    if not match:
        raise UsageError(f"unknown hook point {name!r}; valid: {valid_names(pipe)}")
    expert, layer = match.group(1), int(match.group(2))
    chosen = [expert] if expert else list(experts)
    points = []
    for key in chosen:
        if key not in experts:
            raise UsageError(f"hook point {name!r}: this model has no {key!r} expert; valid: {valid_names(pipe)}")
        if layer >= len(experts[key].blocks):
            raise UsageError(f"hook point {name!r}: layer {layer} is out of range; valid: {valid_names(pipe)}")
        points.append(HookPoint(key, layer))
    return points


def resolve_hook_points(pipe, names) -> list[HookPoint]:
    return sorted({point for name in names for point in resolve_hook_point(pipe, name)})


def block_module(pipe, point: HookPoint):
    return experts_of(pipe)[point.expert].blocks[point.layer]
