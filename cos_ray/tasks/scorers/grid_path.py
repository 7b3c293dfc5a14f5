"""Grid shortest path task-specific score, read from the purple agent's track over the frames.

goal reached 0.5 (the last frame's agent in the goal cell), legal 0.2 (share of tracked positions on free cells
inside the grid), shortest 0.2 (when reached: shortest length / cells travelled, Manhattan steps between the tracked
cells, so a filmstrip of a few x̂0 frames is measured too), obstacles preserved 0.1 (share of obstacle pixels still
dark in the last frame). Frames where no disc-sized purple blob is found are skipped; no agent at the end scores 0
on reached and shortest.
"""

from __future__ import annotations

import numpy as np

from cos_ray.tasks import colors

WEIGHTS = {"goal_reached": 0.5, "legal": 0.2, "shortest": 0.2, "obstacles_preserved": 0.1}


def _agent(frame: np.ndarray, min_area: float):
    """(x, y) centroid of the largest purple blob of at least `min_area` pixels; None if there is none."""
    import cv2

    mask = colors.band_mask(frame, colors.PURPLE_BANDS).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return centroids[biggest] if stats[biggest, cv2.CC_STAT_AREA] >= min_area else None


def score_grid_path(video: np.ndarray, first: np.ndarray, final: np.ndarray, meta: dict) -> tuple[float, dict]:
    """video `# (frames, H, W, 3)` uint8 at the task's size; meta: the grid, obstacles, goal and shortest length."""
    grid = meta["grid"]
    origin, cell, n = grid["origin"], grid["cell"], grid["cells"]
    blocked = {tuple(rc) for rc in meta["blocked"]}
    goal = tuple(meta["goal"])
    min_area = 0.3 * np.pi * meta["agent_radius"] ** 2

    track = []  # (row, col) per frame with an agent, consecutive repeats collapsed
    for frame in video:
        xy = _agent(frame, min_area)
        if xy is None:
            continue
        rc = (int(np.floor((xy[1] - origin) / cell)), int(np.floor((xy[0] - origin) / cell)))
        if not track or track[-1] != rc:
            track.append(rc)
    last = _agent(video[-1], min_area)
    last_rc = None if last is None else (int(np.floor((last[1] - origin) / cell)), int(np.floor((last[0] - origin) / cell)))

    parts = {"goal_reached": float(last_rc == goal)}
    legal = [0 <= r < n and 0 <= c < n and (r, c) not in blocked for r, c in track]
    parts["legal"] = float(np.mean(legal)) if track else 0.0
    travelled = sum(abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(track[:-1], track[1:]))
    parts["shortest"] = min(1.0, meta["shortest"] / travelled) if parts["goal_reached"] and travelled else 0.0
    obstacles = colors.wall_mask(first)
    parts["obstacles_preserved"] = float((obstacles & colors.wall_mask(video[-1])).sum() / max(1, obstacles.sum()))
    score = sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)
    return float(score), {**parts, "track_cells": len(track)}
