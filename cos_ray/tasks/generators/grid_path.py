"""Grid shortest path: a purple disc walks cell by cell along a shortest path to a green goal cell, around black
obstacle cells. Spatial planning without corridors: many routes exist, only the shortest ones are right."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cos_ray.errors import UsageError
from cos_ray.tasks import colors
from cos_ray.tasks.generators.common import CommonParams, bfs, check_int, fill_rect, point_along, route_length, walk_back
from cos_ray.tasks.sample import GeneratedSample

PROMPT = ("Move the purple disc cell by cell along the shortest path to the green goal cell, "
          "never entering the black cells. The grid does not move.")


@dataclass(frozen=True)
class GridPathParams(CommonParams):
    """cells: the grid is cells x cells; obstacles: the share of cells that are blocked."""

    cells: int = 6
    obstacles: float = 0.25

    family = "grid_path"

    def __post_init__(self):
        super().__post_init__()
        check_int("grid_path", "cells", self.cells, 3, max(3, self.size // 12))
        if isinstance(self.obstacles, bool) or not isinstance(self.obstacles, (int, float)) or not 0 <= self.obstacles <= 0.5:
            raise UsageError(f"grid_path.obstacles: expected a share in 0..0.5, got {self.obstacles!r}")


def _layout(rng: np.random.Generator, n: int, share: float):
    """Obstacles, start, goal and one shortest route; redrawn until the goal is reachable and at least n-1 away."""
    cells = [(r, c) for r in range(n) for c in range(n)]
    for _ in range(200):
        blocked = {cells[i] for i in rng.choice(len(cells), size=int(round(share * len(cells))), replace=False)}
        free = [rc for rc in cells if rc not in blocked]
        start, goal = (free[i] for i in rng.choice(len(free), size=2, replace=False))
        tree = bfs(start, lambda rc: 0 <= rc[0] < n and 0 <= rc[1] < n and rc not in blocked,
                   lambda rc: [(rc[0] - 1, rc[1]), (rc[0] + 1, rc[1]), (rc[0], rc[1] - 1), (rc[0], rc[1] + 1)])
        if goal in tree and tree[goal][0] >= n - 1:
            return blocked, start, goal, walk_back(tree, goal)
    raise UsageError(f"grid_path: no solvable layout in 200 draws with cells={n}, obstacles={share}; lower --obstacles")


def generate_grid_path(rng: np.random.Generator, params: GridPathParams) -> GeneratedSample:
    n, size = params.cells, params.size
    margin = max(2, size // 32)
    cell = (size - 2 * margin) // n
    origin = (size - cell * n) // 2
    radius = cell * 0.35
    blocked, start, goal, route = _layout(rng, n, params.obstacles)

    def centre(rc):
        return np.array([origin + (rc[1] + 0.5) * cell, origin + (rc[0] + 0.5) * cell])  # (x, y)

    board = np.full((size, size, 3), colors.WHITE, dtype=np.uint8)  # (H, W, 3)
    for i in range(n + 1):
        fill_rect(board, origin + i * cell, origin, origin + i * cell + 1, origin + n * cell + 1, colors.GRID_LINE)
        fill_rect(board, origin, origin + i * cell, origin + n * cell + 1, origin + i * cell + 1, colors.GRID_LINE)
    for r, c in blocked:
        fill_rect(board, origin + c * cell + 1, origin + r * cell + 1, origin + (c + 1) * cell, origin + (r + 1) * cell, colors.WALL)
    inset = cell * 0.08
    gx, gy = origin + goal[1] * cell, origin + goal[0] * cell
    fill_rect(board, gx + inset, gy + inset, gx + cell - inset, gy + cell - inset, colors.START)  # green goal

    import cv2

    points = np.stack([centre(rc) for rc in route])  # (cells on route, 2)
    total = route_length(points)
    frames = []
    for k in range(params.frames):
        image = board.copy()
        x, y = point_along(points, total * k / (params.frames - 1))
        cv2.circle(image, (int(round(x)), int(round(y))), int(round(radius)), colors.AGENT, thickness=-1, lineType=cv2.LINE_8)
        frames.append(image)
    frames = np.stack(frames)  # (frames, H, W, 3)

    foreground = np.zeros((size, size), dtype=bool)  # (H, W): the cells the agent crosses, and the goal
    for r, c in route:
        foreground[origin + r * cell: origin + (r + 1) * cell, origin + c * cell: origin + (c + 1) * cell] = True
    meta = {
        "family": "grid_path", "params": {"cells": n, "obstacles": params.obstacles, "size": size, "frames": params.frames},
        "grid": {"origin": origin, "cell": cell, "cells": n}, "agent_radius": radius,
        "blocked": sorted(list(rc) for rc in blocked), "start": list(start), "goal": list(goal),
        "shortest": len(route) - 1, "route": [list(rc) for rc in route],
    }
    return GeneratedSample(prompt=PROMPT, frames=frames, foreground=foreground, meta=meta)
