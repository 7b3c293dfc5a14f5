"""Candidate routes drawn in one frame of a path task (maze, grid_path): how many the model holds at a step.

The paper's claim is that early x̂0 hold several candidate solutions at once and later steps prune them; a score
cannot see that (a frame with the right route and a wrong branch scores like one with the right route alone). This
module reads the routes themselves, on the task's own grid (task.json's `grid`, `start`, `goal`):

- a cell is *painted* when at least half of a small window at its centre has the family's answer colour (maze: the
  orange path; grid_path: the purple agent, in any frame); the start and goal cells count as painted (their markers
  cover the centre);
- maze: two neighbouring painted cells are joined when the window on the midpoint of their shared side is painted
  too (the path crosses there); grid_path: when both are painted (the agent moves cell to cell);
- a *candidate* is a simple route from the start through joined cells that ends at the goal or where the drawing
  ends (a cell with no unvisited joined neighbour). A tree of drawn corridors with k dead ends and the goal has
  k + 1 candidates; a gap ends a candidate there (the piece beyond it, not joined to the start, is no candidate).

Routes are tuples of (row, col) cells; `MAX_CANDIDATES` caps the count (a smear of colour over a region joins cells
in cycles and would list routes combinatorially: a count at the cap means "a smear", not that many routes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cos_ray.tasks import colors

MAX_CANDIDATES = 32
PAINTED = 0.5  # share of a window's pixels in the answer colour for the window to count as drawn
FAMILIES = ("maze", "grid_path")

Cell = tuple[int, int]
Route = tuple[Cell, ...]


@dataclass(frozen=True)
class Grid:
    """The task's grid as its task.json gives it: pixel origin and cell side, cells per side, start and goal."""

    origin: float
    cell: float
    cells: int
    start: Cell
    goal: Cell

    @classmethod
    def from_meta(cls, meta: dict) -> "Grid | None":
        """None when the task has no grid (e.g. a VBVR-Bench maze: its grid is not in a task.json)."""
        grid = meta.get("grid") if isinstance(meta, dict) else None
        if not grid or "start" not in meta or "goal" not in meta:
            return None
        return cls(float(grid["origin"]), float(grid["cell"]), int(grid["cells"]), tuple(meta["start"]),
                   tuple(meta["goal"]))

    def centre(self, cell: Cell) -> tuple[float, float]:
        """(x, y) in pixels."""
        return self.origin + (cell[1] + 0.5) * self.cell, self.origin + (cell[0] + 0.5) * self.cell

    def window(self) -> int:
        """Half-side of a sampling window: within the drawn path's width (the generator's cell // 4, >= 4 px)."""
        return max(1, int(max(4, self.cell // 4) // 3))


def _share(mask: np.ndarray, x: float, y: float, half: int) -> float:
    """Share of `mask` pixels set in the window of half-side `half` around (x, y); 0 outside the image."""
    xi, yi = int(round(x)), int(round(y))
    patch = mask[max(0, yi - half): yi + half + 1, max(0, xi - half): xi + half + 1]
    return float(patch.mean()) if patch.size else 0.0


def _neighbours(cell: Cell, n: int):
    r, c = cell
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        if 0 <= r + dr < n and 0 <= c + dc < n:
            yield r + dr, c + dc


def joined_cells(mask: np.ndarray, grid: Grid, through_midpoints: bool) -> dict[Cell, set[Cell]]:
    """The drawn graph: painted cell -> its joined painted neighbours (see the module docstring)."""
    half = grid.window()
    n = grid.cells
    painted = {(r, c) for r in range(n) for c in range(n) if _share(mask, *grid.centre((r, c)), half) >= PAINTED}
    painted |= {grid.start, grid.goal}
    graph: dict[Cell, set[Cell]] = {cell: set() for cell in painted}
    for cell in painted:
        for other in _neighbours(cell, n):
            if other not in painted or other in graph[cell]:
                continue
            if through_midpoints:
                (x1, y1), (x2, y2) = grid.centre(cell), grid.centre(other)
                if _share(mask, (x1 + x2) / 2, (y1 + y2) / 2, half) < PAINTED:
                    continue
            graph[cell].add(other)
            graph[other].add(cell)
    return graph


def candidate_routes(graph: dict[Cell, set[Cell]], start: Cell, goal: Cell, limit: int = MAX_CANDIDATES) -> list[Route]:
    """Every simple route from `start` that ends at `goal` or where the drawing ends, at most `limit`, in DFS order."""
    routes: list[Route] = []
    stack: list[tuple[Cell, Route]] = [(start, (start,))]
    while stack and len(routes) < limit:
        cell, route = stack.pop()
        if cell == goal and len(route) > 1:
            routes.append(route)
            continue
        onward = sorted(other for other in graph.get(cell, ()) if other not in route)
        if not onward:
            if len(route) > 1:
                routes.append(route)
            continue
        stack.extend((other, route + (other,)) for other in reversed(onward))
    return routes


def answer_mask(video: np.ndarray, family: str) -> np.ndarray:
    """`# (H, W)` bool: where a frame sequence `# (frames, H, W, 3)` uint8 draws its answer - maze: the orange path
    of the last frame (the answer frame, as the maze scorer reads it); grid_path: the purple agent in any frame."""
    if family == "maze":
        return colors.band_mask(video[-1], colors.ORANGE_BANDS)
    if family == "grid_path":
        return np.any([colors.band_mask(frame, colors.PURPLE_BANDS) for frame in video], axis=0)
    raise ValueError(f"no route reader for family {family!r}; readers: {', '.join(FAMILIES)}")


def read_candidates(video: np.ndarray, family: str, meta: dict) -> list[Route] | None:
    """The candidate routes drawn in `video` `# (frames, H, W, 3)` uint8 at the task's size; None when the family
    has no route reader or the task no grid."""
    grid = Grid.from_meta(meta) if family in FAMILIES else None
    if grid is None:
        return None
    graph = joined_cells(answer_mask(np.asarray(video), family), grid, through_midpoints=family == "maze")
    return candidate_routes(graph, grid.start, grid.goal)
