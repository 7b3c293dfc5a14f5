"""Chain-of-Steps in the card's own verdict: per step, is the decoded x̂0 *solved* (task score >= threshold AND the
orange path covers exactly the route), not only above the score threshold.

The steps table stores x̂0's task score per step; the route check needs pixels. They are in each run's x̂0 filmstrip
(`filmstrip.png`, lossless: rows = recorded steps, columns = frames evenly spaced with the last one included,
`cos_ray.engine.records.decode_filmstrip`), so the last column of row s is x̂0's last frame at step s.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from cos_ray.tasks.families import get_family

STEPS_SQL = """select r.run_id, r.task_id, r.filmstrip, s.step, s.score
from steps s join runs r using (run_id)
where r.method = 'baseline' and r.status = 'ok' and r.filmstrip is not null and s.score is not null
order by r.run_id, s.step"""


def last_frames(filmstrip: np.ndarray, steps: int, size: tuple[int, int]) -> np.ndarray:
    """`# (steps * h, shown * w, 3)` filmstrip -> the last column's tiles `# (steps, H, W, 3)` at the task's size."""
    from PIL import Image

    tile_h = filmstrip.shape[0] // steps
    tile_w = tile_h * size[1] // size[0]
    tiles = [filmstrip[s * tile_h:(s + 1) * tile_h, -tile_w:] for s in range(steps)]  # (h, w, 3) each
    if (tile_h, tile_w) != tuple(size):
        tiles = [np.asarray(Image.fromarray(t).resize((size[1], size[0]), Image.NEAREST)) for t in tiles]
    return np.stack(tiles)


def per_step_solved(store_uri: str) -> dict:
    """{"runs", "steps": [{step, solved, above_threshold}], "lock_in": {step or "never": runs}, "flips": {...}} over
    the baseline runs with a filmstrip; lock-in = the first step from which x̂0 stays solved to the end."""
    from PIL import Image

    from cos_ray.training.figures_common import generated_samples, rows
    from cos_ray.training.solved import stored_run_solved

    samples = generated_samples(store_uri)
    by_run: dict[str, list[dict]] = {}
    for row in rows(store_uri, STEPS_SQL):
        by_run.setdefault(row["run_id"], []).append(row)
    solved, above = [], []  # per run: [verdict at step 0, 1, ...]
    for run in by_run.values():
        sample = samples[run[0]["task_id"]]
        strip = np.asarray(Image.open(Path(store_uri) / run[0]["filmstrip"]).convert("RGB"))
        tiles = last_frames(strip, len(run), sample.frames.shape[1:3])  # (steps, H, W, 3)
        solved.append([stored_run_solved(r["score"], tile, sample.meta) for r, tile in zip(run, tiles)])
        above.append([r["score"] >= get_family(sample.meta["family"]).threshold for r in run])
    table, above = np.array(solved), np.array(above)  # (runs, steps)
    return {"runs": len(table),
            "steps": [{"step": s, "solved": float(table[:, s].mean()), "above_threshold": float(above[:, s].mean())}
                      for s in range(table.shape[1])],
            **lock_in_and_flips(table)}


def lock_in_and_flips(table: np.ndarray) -> dict:
    """table `# (runs, steps)` bool -> lock-in step counts (the first step from which x̂0 stays solved to the end;
    "never" when the last step is not solved) and how often the verdict flips between consecutive steps."""
    lock_in = Counter()
    for run in table:
        wrong = np.flatnonzero(~run)
        lock_in["never" if not run[-1] else int(wrong[-1] + 1) if len(wrong) else 0] += 1
    flips = np.sum(table[:, 1:] != table[:, :-1], axis=1)  # (runs,)
    ordered = sorted((k for k in lock_in if k != "never")) + (["never"] if "never" in lock_in else [])
    return {"lock_in": {str(k): lock_in[k] for k in ordered},
            "flips": {"mean": float(flips.mean()), "runs_that_flip": float((flips > 0).mean()),
                      "flipped_and_solved": float(((flips > 0) & table[:, -1]).mean())}}

