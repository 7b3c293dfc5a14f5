"""Maze task-specific score, with VBVR-EvalKit's maze rules and weights.

path validity 0.45 (share of path pixels on walls: < 5% -> 1, < 10% -> 0.7, else 0.3), path completeness 0.30
(more than 50 path pixels within 30 px of the start / goal centre: both 1, one 0.6, none 0.3), navigation 0.20 (one
connected path -> 1, up to three pieces 0.6, else 0.3), walls preserved 0.05 (> 90% of the walls kept -> 1, > 70%
0.7, else 0.4). Walls and markers are read from the task's first frame (EvalKit reads the video's first frame: for
an x̂0 the task's is the reliable one). One deviation: a frame with no path at all scores 0 on the three path rules
(EvalKit gives 0.3, 0.3, 0.6), so a still first frame or a blurry early x̂0 is not credited for a path it lacks.
`solution_iou` (detail only): IoU of the drawn path with final_frame.png's path.
"""

from __future__ import annotations

import numpy as np

from cos_ray.tasks import colors

WEIGHTS = {"path_validity": 0.45, "path_completeness": 0.30, "navigation": 0.20, "walls_preserved": 0.05}
RADIUS = 30  # px, EvalKit's window half-side around a marker
MIN_NEAR = 50  # path pixels EvalKit wants in that window


def _centre(mask: np.ndarray):
    """(x, y) of the largest connected blob of `mask`, as EvalKit's largest contour; None when empty."""
    import cv2

    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return tuple(int(v) for v in centroids[biggest])


def _near(path: np.ndarray, centre) -> bool:
    x, y = centre
    return int(path[max(0, y - RADIUS): y + RADIUS, max(0, x - RADIUS): x + RADIUS].sum()) > MIN_NEAR


def score_maze(video: np.ndarray, first: np.ndarray, final: np.ndarray, meta: dict) -> tuple[float, dict]:
    """video `# (frames, H, W, 3)` uint8 at the task's size; first / final `# (H, W, 3)` the task's frames."""
    import cv2

    last = video[-1]
    path = colors.band_mask(last, colors.ORANGE_BANDS)  # (H, W)
    walls = colors.wall_mask(first)
    start = _centre(colors.band_mask(first, colors.GREEN_BANDS))
    goal = _centre(colors.band_mask(first, colors.RED_BANDS))
    n_path = int(path.sum())
    parts = {}
    if n_path == 0:
        parts.update(path_validity=0.0, path_completeness=0.0, navigation=0.0)
    else:
        on_walls = (path & walls).sum() / n_path
        parts["path_validity"] = 1.0 if on_walls < 0.05 else 0.7 if on_walls < 0.1 else 0.3
        if start is None or goal is None:
            parts["path_completeness"] = 0.5  # EvalKit's value when a marker is not found
        else:
            near = _near(path, start) + _near(path, goal)
            parts["path_completeness"] = (0.3, 0.6, 1.0)[near]
        pieces = cv2.connectedComponents(path.astype(np.uint8))[0] - 1
        parts["navigation"] = 1.0 if pieces == 1 else 0.6 if pieces <= 3 else 0.3
    kept = (walls & colors.wall_mask(last)).sum() / max(1, walls.sum())
    parts["walls_preserved"] = 1.0 if kept > 0.9 else 0.7 if kept > 0.7 else 0.4
    score = sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)
    truth = colors.band_mask(final, colors.ORANGE_BANDS)
    details = {**parts, "solution_iou": float((path & truth).sum() / max(1, (path | truth).sum()))}
    return float(score), details
