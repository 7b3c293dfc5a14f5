"""Chain-of-Steps: per-step curves grouped by method, the step at which answers lock in, and which steps a run's x̂0
filmstrip shows.

The paper's finding is that reasoning happens along the denoising steps: x̂0 at early steps holds several candidate
answers, later steps prune them. The curves show when the decoded x̂0 starts scoring; `lock_in_step` (the first step
from which the answer stays correct) shows when it stops changing its mind.
The curves and lock-in tables live in `cos_ray.figures.chain_of_steps`, shared with `cos-ray figures`.
"""

from __future__ import annotations

from cos_ray.figures.chain_of_steps import (  # noqa: F401 - the views call them as chain.<name>
    BOUNDED, METRICS, lock_in, lock_in_histogram, step_curves)
from cos_ray.figures.run_filter import RunFilter


def runs_with_filmstrips(connection, where: RunFilter, limit: int = 500) -> list[str]:
    """Run ids (at most `limit`, in order) of the filtered runs that have a filmstrip: the run pickers' choices."""
    clause, values = where.where()
    rows = connection.query(f"""
        SELECT run_id FROM runs WHERE {clause} AND filmstrip IS NOT NULL ORDER BY task_id, method, seed, run_id
        LIMIT ?""", [*values, int(limit)])
    return rows.column("run_id").to_pylist()


def run_detail(connection, run_id: str) -> dict | None:
    """One run's identity, scores and media paths, and its recorded steps: {"run": {...}, "steps": [...],
    "x0_steps": [steps whose x̂0 was recorded - the filmstrip's rows]}."""
    runs = connection.query("""
        SELECT run_id, task_id, method, params, seed, score, lock_in_step, scores, video, filmstrip
        FROM runs WHERE run_id = ?""", [run_id]).to_pylist()
    if not runs:
        return None
    steps = connection.query("""
        SELECT step, timestep, sigma, expert, x0_mean, x0_std, x0_change, score FROM steps WHERE run_id = ?
        ORDER BY step""", [run_id]).to_pylist()
    return {"run": runs[0], "steps": steps,
            "x0_steps": [row["step"] for row in steps if row["x0_mean"] is not None]}
