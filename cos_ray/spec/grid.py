"""Grids: `{grid: [a, b, ...]}` anywhere in a spec; several grids form their cartesian product.

Expansion happens on the YAML data, before validation, so a grid may stand for any value - a number, a range, a
whole method. Each variant remembers which value of each grid it took, and a problem found in a variant names the
grid value (`methods[1].ensemble.layers.grid[2]: layer 45 is out of range 0-39`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from cos_ray.spec.fields import shown
from cos_ray.spec.problems import Problems, join

GRID = "grid"
MAX_VARIANTS = 10_000  # cos_ray.spec.limits.Limits.max_points


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


def expand_grids(data, problems: Problems, path: str = "", max_points: int = MAX_VARIANTS) -> list[Variant]:
    """Every grid point of `data` (one Variant when there is no grid); malformed grids are recorded as problems.

    The points are counted first, from the grids' lengths alone, so a product of grids too large to list is refused
    without building any of it."""
    grids: list[tuple[str, int]] = []
    total = count_points(data, max_points, path, grids)
    if total > max_points:
        listed = ", ".join(f"{where or 'spec'} ({count:,} values)" for where, count in grids[:4])
        more = f" and {len(grids) - 4:,} more" if len(grids) > 4 else ""
        amount = f"{total:,}" if total < 10**15 else "more than 10^15"
        problems.add(max(grids, key=lambda grid: grid[1])[0] or "grid",
                     f"grids at {listed}{more} make {amount} grid points; at most {max_points:,} are accepted "
                     f"(write several specs)")
        return []
    variants = _expand(data, path, problems)
    return variants if variants else [Variant(data)]


def count_points(node, limit: int, path: str = "", grids: list | None = None) -> int:
    """How many grid points `node` expands to (saturating past `limit` and 10^15); `grids` collects (path, values)."""
    cap = max(limit, 10**15) + 1
    if is_grid(node):
        values = node[GRID]
        if not isinstance(values, list):
            return 1  # malformed: reported by _expand
        if grids is not None:
            grids.append((path, len(values)))
        total = 0
        for index, value in enumerate(values):
            total = min(cap, total + count_points(value, limit, join(join(path, GRID), index), grids))
        return max(total, 1)
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    total = 1
    for key, item in items:
        total = min(cap, total * count_points(item, limit, join(path, key if isinstance(key, int) and
                                                                  isinstance(node, list) else str(key)), grids))
    return total


def _expand(node, path: str, problems: Problems) -> list[Variant]:
    if is_grid(node):
        values = node[GRID]
        if set(node) != {GRID}:
            extra = ", ".join(sorted(str(key) for key in node if key != GRID))
            problems.add(path, f"a grid is {{grid: [values]}} and nothing else; remove {extra}")
            return []
        if not isinstance(values, list) or not values:
            problems.add(join(path, GRID), f"expected a non-empty list of values, got {shown(values)}")
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
