"""Whether a maze video solves its task: the task-specific score reaches the family's threshold AND the drawn path is
the ground-truth path (the cells the orange path covers, read at each cell's centre, are exactly the route's cells;
the start and goal cells are left out: their markers cover the path there).

The score alone can pass a wrong path (any connected orange band off the walls touching both markers); the cell check
alone can pass a path drawn over walls. Both together are "solved" (the figures' `solved` verdict,
`solved_verdict.py`; the tiny reasoner's held-out table, `cos_ray.training.evaluate`).
"""

from __future__ import annotations

import numpy as np

from cos_ray.tasks import colors
from cos_ray.tasks.families import get_family


def drawn_cells(frame: np.ndarray, grid: dict) -> set:
    """Cells whose centre 3x3 pixels are mostly orange in `frame` `# (H, W, 3)` uint8."""
    orange = colors.band_mask(frame, colors.ORANGE_BANDS)  # (H, W)
    origin, cell, n = grid["origin"], grid["cell"], grid["cells"]
    found = set()
    for r in range(n):
        for c in range(n):
            x, y = int(origin + (c + 0.5) * cell), int(origin + (r + 0.5) * cell)
            if orange[y - 1: y + 2, x - 1: x + 2].mean() > 0.5:
                found.add((r, c))
    return found


def draws_the_route(frame: np.ndarray, meta: dict) -> bool:
    """Whether the orange path in `frame` `# (H, W, 3)` uint8 covers exactly the route's cells (ends left out)."""
    route = [tuple(rc) for rc in meta["route"]]
    ends = {route[0], route[-1]}
    return bool(drawn_cells(frame, meta["grid"]) - ends == set(route) - ends)


def judge(video: np.ndarray, first: np.ndarray, final: np.ndarray, meta: dict) -> dict:
    """video `# (frames, H, W, 3)` uint8 -> {score, path_correct, solved, details}."""
    family = get_family(meta["family"])
    score, details = family.score(video, first, final, meta)
    path_correct = draws_the_route(video[-1], meta)
    return {"score": score, "path_correct": path_correct,
            "solved": bool(score >= family.threshold and path_correct), "details": details}


def stored_run_solved(score: float | None, last_frame: np.ndarray, meta: dict) -> bool:
    """The verdict on a run read back from a store: its stored `score` (the task score of the raw frames) reaches the
    family's threshold AND the route is read from its stored video's `last_frame` `# (H, W, 3)` uint8. The score is
    not recomputed from the video: the store's mp4 is H.264, which moves the maze score (up to 0.14, and 10-27% of the
    0.9 verdicts on the held-out and fig3b stores), while the cells read at their centres are the raw video's (199 of
    200 runs on the held-out store; 12 of 12 baselines re-run in process)."""
    return bool(score is not None and score >= get_family(meta["family"]).threshold
                and draws_the_route(last_frame, meta))


def to_uint8(video) -> np.ndarray:
    """`# (frames, H, W, 3)` float in [0, 1] -> uint8, rounded as the writers do."""
    return np.clip(np.rint(np.asarray(video) * 255.0), 0, 255).astype(np.uint8)
