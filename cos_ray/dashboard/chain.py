"""Chain-of-Steps: per-step curves grouped by method, the step at which answers lock in, and which steps a run's x̂0
filmstrip shows.

The paper's finding is that reasoning happens along the denoising steps: x̂0 at early steps holds several candidate
answers, later steps prune them. The curves show when the decoded x̂0 starts scoring; `lock_in_step` (the first step
from which the answer stays correct) shows when it stops changing its mind.
"""

from __future__ import annotations

import pyarrow as pa

from cos_ray.figures.intervals import bounded_interval, t_interval, wilson
from cos_ray.dashboard.filters import RunFilter

BOUNDED = {"score"}  # metrics in [0, 1]: their intervals stay there (`intervals.bounded_interval`)
METRICS = {
    "score": "task-specific score of the decoded x̂0",
    "x0_change": "relative change of x̂0 from the previous recorded step",
    "x0_std": "standard deviation of x̂0",
    "x0_mean": "mean of x̂0",
}


def step_curves(connection, where: RunFilter, metric: str = "score") -> pa.Table:
    """Per (method, step): runs with a value, the mean and its 95% interval (inside [0, 1] for a score)."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    clause, values = where.where("r")
    rows = connection.query(f"""
        SELECT r.method, s.step, count(s.{metric}) AS runs, avg(s.{metric}) AS mean, stddev_samp(s.{metric}) AS sd
        FROM steps s JOIN runs r USING (run_id)
        WHERE {clause} AND s.{metric} IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""", values).to_pylist()
    interval = bounded_interval if metric in BOUNDED else t_interval
    for row in rows:
        row["ci_low"], row["ci_high"] = interval(row["mean"], row.pop("sd"), row["runs"])
    columns = ("method", "step", "runs", "mean", "ci_low", "ci_high")
    return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.float64()) for c in columns})


def lock_in(connection, where: RunFilter) -> pa.Table:
    """Per method: runs, runs scored, runs whose answer locked in, the share with its 95% Wilson interval, mean and
    median lock-in step, mean flips."""
    clause, values = where.where()
    table = connection.query(f"""
        SELECT method, count(*) AS runs, count(score) AS scored, count(lock_in_step) AS locked,
               count(lock_in_step) / nullif(count(score), 0) AS locked_share,
               avg(lock_in_step) AS mean_lock_in_step, median(lock_in_step) AS median_lock_in_step,
               avg(coalesce(flips, TRY_CAST(json_extract_string(scores, '$.flips') AS INTEGER))) AS mean_flips
        FROM runs WHERE {clause} GROUP BY 1 ORDER BY 1""", values)
    bounds = [wilson(locked, scored) for locked, scored in zip(table.column("locked").to_pylist(),
                                                               table.column("scored").to_pylist())]
    at = table.schema.get_field_index("locked_share") + 1
    table = table.add_column(at, "locked_ci_low", pa.array([low for low, _ in bounds], pa.float64()))
    return table.add_column(at + 1, "locked_ci_high", pa.array([high for _, high in bounds], pa.float64()))


def lock_in_histogram(connection, where: RunFilter) -> pa.Table:
    """Per (method, lock_in_step): runs that locked in at that step."""
    clause, values = where.where()
    return connection.query(f"""
        SELECT method, lock_in_step, count(*) AS runs FROM runs
        WHERE {clause} AND lock_in_step IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2""", values)


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
