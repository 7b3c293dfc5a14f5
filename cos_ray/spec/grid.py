"""Grids: `{grid: [a, b, ...]}` anywhere in a spec; several grids form their cartesian product.

Expansion happens on the YAML data, before validation, so a grid may stand for any value - a number, a range, a
whole method. Each variant remembers which value of each grid it took, and a problem found in a variant names the
grid value (`methods[1].ensemble.layers.grid[2]: layer 45 is out of range 0-39`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from cos_ray.spec.problems import Problems, join

GRID = "grid"
MAX_VARIANTS = 100_000


@dataclass
class Variant:
    """One grid point: the data with every grid replaced by one of its values, and which value (path -> index)."""

    data: object
    choices: dict[str, int] = field(default_factory=dict)

    def locate(self, path: str) -> str:
        """A problem's path, pointing into the grid value it came from when it lies under a grid."""
        for grid_path in sorted(self.choices, key=len, reverse=True):
            rest = path[len(grid_path):]
            if path.startswith(grid_path) and (not rest or rest[0] in ".["):
                return f"{grid_path}.grid[{self.choices[grid_path]}]{rest}"
        return path


def is_grid(node) -> bool:
    return isinstance(node, dict) and GRID in node


def expand_grids(data, problems: Problems, path: str = "") -> list[Variant]:
    """Every grid point of `data` (one Variant when there is no grid); malformed grids are recorded as problems."""
    variants = _expand(data, path, problems)
    return variants if variants else [Variant(data)]


def _expand(node, path: str, problems: Problems) -> list[Variant]:
    if is_grid(node):
        values = node[GRID]
        if set(node) != {GRID}:
            extra = ", ".join(sorted(str(key) for key in node if key != GRID))
            problems.add(path, f"a grid is {{grid: [values]}} and nothing else; remove {extra}")
            return []
        if not isinstance(values, list) or not values:
            problems.add(join(path, GRID), f"expected a non-empty list of values, got {values!r}")
            return []
        out = []
        for index, value in enumerate(values):
            for sub in _expand(value, join(join(path, GRID), index), problems):
                out.append(Variant(sub.data, {path: index, **sub.choices}))
        return out
    if isinstance(node, dict):
        keys = list(node)
        parts = [_expand(node[key], join(path, str(key)), problems) for key in keys]
        return _product(parts, lambda datas: dict(zip(keys, datas)), path, problems)
    if isinstance(node, list):
        parts = [_expand(item, join(path, index), problems) for index, item in enumerate(node)]
        return _product(parts, list, path, problems)
    return [Variant(node)]


def _product(parts: list[list[Variant]], build, path: str, problems: Problems) -> list[Variant]:
    if any(not part for part in parts):
        return []
    total = 1
    for part in parts:
        total *= len(part)
    if total > MAX_VARIANTS:
        problems.add(path or "spec", f"grids expand to {total} variants; at most {MAX_VARIANTS} are accepted")
        return []
    out = []
    for combo in itertools.product(*parts):  # the first grid varies slowest
        choices = {}
        for variant in combo:
            choices.update(variant.choices)
        out.append(Variant(build([variant.data for variant in combo]), choices))
    return out
