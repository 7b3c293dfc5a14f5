"""Maze in VBVR's drawing conventions, so VBVR-EvalKit's maze scorer reads it.

White background, near-black walls, a green start square and a red goal square; the answer is an orange path drawn
from start to goal through the corridors, progressively in the ground-truth video. The path is thick and the
markers small, so that more than 50 path pixels lie within 30 px of each marker's centre (EvalKit's test) at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cos_ray.tasks import colors
from cos_ray.tasks.generators.common import (
    CommonParams, bfs, check_int, draw_route, fill_rect, route_length, walk_back,
)
from cos_ray.tasks.sample import GeneratedSample

PROMPT = ("Draw the orange path from the green start square to the red goal square through the maze, "
          "without crossing the black walls. The walls and squares do not move.")


@dataclass(frozen=True)
class MazeParams(CommonParams):
    """cells: the maze is cells x cells."""

    cells: int = 5

    family = "maze"

    def __post_init__(self):
        super().__post_init__()
        check_int("maze", "cells", self.cells, 2, max(2, self.size // 16))


def _carve(rng: np.random.Generator, n: int) -> set:
    """A perfect maze by randomised depth-first search: the set of open passages {((r, c), (r', c'))}."""
    open_ = set()
    start = (int(rng.integers(n)), int(rng.integers(n)))
    stack, seen = [start], {start}
    while stack:
        r, c = stack[-1]
        nexts = [(r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                 if 0 <= r + dr < n and 0 <= c + dc < n and (r + dr, c + dc) not in seen]
        if not nexts:
            stack.pop()
            continue
        nxt = nexts[int(rng.integers(len(nexts)))]
        open_ |= {((r, c), nxt), (nxt, (r, c))}
        seen.add(nxt)
        stack.append(nxt)
    return open_


def generate_maze(rng: np.random.Generator, params: MazeParams) -> GeneratedSample:
    n, size = params.cells, params.size
    margin = max(2, size // 32)
    cell = (size - 2 * margin) // n
    origin = (size - cell * n) // 2
    wall = max(2, cell // 8)
    path_width = min(max(4, cell // 4), 24)
    marker = min(max(path_width + 4, int(round(cell * 0.4))), 32)  # small: EvalKit looks within 30 px of its centre

    open_ = _carve(rng, n)
    start = (int(rng.integers(n)), int(rng.integers(n)))

    def neighbours(rc):
        return [(rc[0] + dr, rc[1] + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))]

    tree = bfs(start, lambda rc: 0 <= rc[0] < n and 0 <= rc[1] < n, lambda rc: [x for x in neighbours(rc) if (rc, x) in open_])
    far = sorted(d for d, _ in tree.values())
    candidates = sorted(rc for rc, (d, _) in tree.items() if d >= max(1, far[len(far) // 2]))
    goal = candidates[int(rng.integers(len(candidates)))]
    route = walk_back(tree, goal)

    def centre(rc):
        return np.array([origin + (rc[1] + 0.5) * cell, origin + (rc[0] + 0.5) * cell])  # (x, y)

    board = np.full((size, size, 3), colors.WHITE, dtype=np.uint8)  # (H, W, 3)
    half = wall / 2
    for r in range(n):
        for c in range(n):
            x0, y0 = origin + c * cell, origin + r * cell
            if r == 0 or ((r - 1, c), (r, c)) not in open_:  # wall above
                fill_rect(board, x0 - half, y0 - half, x0 + cell + half, y0 + half, colors.WALL)
            if c == 0 or ((r, c - 1), (r, c)) not in open_:  # wall to the left
                fill_rect(board, x0 - half, y0 - half, x0 + half, y0 + cell + half, colors.WALL)
    end = origin + n * cell
    fill_rect(board, origin - half, end - half, end + half, end + half, colors.WALL)  # bottom border
    fill_rect(board, end - half, origin - half, end + half, end + half, colors.WALL)  # right border

    points = np.stack([centre(rc) for rc in route])  # (cells on route, 2)
    total = route_length(points)

    def markers(image):
        for rc, color in ((start, colors.START), (goal, colors.GOAL)):
            x, y = centre(rc)
            fill_rect(image, x - marker / 2, y - marker / 2, x + marker / 2, y + marker / 2, color)
        return image

    frames = []
    for k in range(params.frames):
        image = board.copy()
        draw_route(image, points, total * k / (params.frames - 1), path_width, colors.PATH)
        frames.append(markers(image))
    frames = np.stack(frames)  # (frames, H, W, 3)

    solved = np.zeros_like(board)
    draw_route(solved, points, total, path_width, (1, 1, 1))
    foreground = markers(solved).any(axis=-1)  # (H, W): path and markers
    meta = {
        "family": "maze", "params": {"cells": n, "size": size, "frames": params.frames},
        "grid": {"origin": origin, "cell": cell, "cells": n},
        "start": list(start), "goal": list(goal), "route": [list(rc) for rc in route],
    }
    return GeneratedSample(prompt=PROMPT, frames=frames, foreground=foreground, meta=meta)
