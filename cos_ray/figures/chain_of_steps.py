"""Chain-of-Steps: the decoded x̂0 per step - its task score (mean and 95% interval) and the verdict's share per step
- the step at which answers lock in (from then on right to the end) and how often the verdict flips between steps.

The dashboard's Chain-of-Steps view draws `step_curves`, `lock_in` and `lock_in_histogram`; `cos-ray figures` draws
`figure`, which adds the verdict per step: `score` reads the steps table's x̂0 score; `solved` reads the route from
each run's x̂0 filmstrip (`filmstrip.png`, lossless: rows = recorded steps, columns = frames evenly spaced with the
last one included, `cos_ray.engine.records.decode_filmstrip`), so the last column of row s is x̂0's last frame at s.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from cos_ray.figures.figure import Drawn, Unsupported, pairs
from cos_ray.figures.intervals import bounded_interval, t_interval, wilson
from cos_ray.figures.run_filter import RunFilter

BOUNDED = {"score", "answer_in_candidates"}  # metrics in [0, 1]: their intervals stay there (`intervals.bounded_interval`)
METRICS = {
    "score": "task-specific score of the decoded x̂0",
    "x0_change": "relative change of x̂0 from the previous recorded step",
    "x0_std": "standard deviation of x̂0",
    "x0_mean": "mean of x̂0",
    # exploration (cos_ray.probes.exploration, docs/probes.md)
    "candidates": "candidate routes drawn in the decoded x̂0 (path tasks)",
    "answer_in_candidates": "share of runs whose final route is among the step's candidates (path tasks)",
    "x0_spread": "mean pairwise RMS distance between an ensemble's members' x̂0 (exploration breadth)",
    "x0_to_final": "RMS distance from the step's x̂0 to the run's own final latent",
}


def step_curves(connection, where: RunFilter, metric: str = "score") -> pa.Table:
    """Per (method, step): runs with a value, the mean and its 95% interval (inside [0, 1] for a score)."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    clause, values = where.where("r")
    value = f"CAST(s.{metric} AS DOUBLE)"  # a boolean (answer_in_candidates) averages as a share
    rows = connection.query(f"""
        SELECT r.method, s.step, count({value}) AS runs, avg({value}) AS mean, stddev_samp({value}) AS sd
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
    median lock-in step, mean flips, and the mean `commit_step` (the step after which the answer no longer changes,
    right or wrong: `cos_ray.probes.exploration`)."""
    clause, values = where.where()
    table = connection.query(f"""
        SELECT method, count(*) AS runs, count(score) AS scored, count(lock_in_step) AS locked,
               count(lock_in_step) / nullif(count(score), 0) AS locked_share,
               avg(lock_in_step) AS mean_lock_in_step, median(lock_in_step) AS median_lock_in_step,
               avg(coalesce(flips, TRY_CAST(json_extract_string(scores, '$.flips') AS INTEGER))) AS mean_flips,
               avg(commit_step) AS mean_commit_step
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


def last_frames(filmstrip: np.ndarray, steps: int, size: tuple[int, int]) -> np.ndarray:
    """`# (steps * h, shown * w, 3)` filmstrip -> the last column's tiles `# (steps, H, W, 3)` at the task's size."""
    from PIL import Image

    tile_h = filmstrip.shape[0] // steps
    tile_w = tile_h * size[1] // size[0]
    tiles = [filmstrip[s * tile_h:(s + 1) * tile_h, -tile_w:] for s in range(steps)]  # (h, w, 3) each
    if (tile_h, tile_w) != tuple(size):
        tiles = [np.asarray(Image.fromarray(t).resize((size[1], size[0]), Image.NEAREST)) for t in tiles]
    return np.stack(tiles)


def lock_in_and_flips(table: np.ndarray) -> dict:
    """table `# (runs, steps)` bool -> lock-in step counts (the first step from which x̂0 stays right to the end;
    "never" when the last step is not) and how often the verdict flips between consecutive steps."""
    lock = Counter()
    for run in table:
        wrong = np.flatnonzero(~run)
        lock["never" if not run[-1] else int(wrong[-1] + 1) if len(wrong) else 0] += 1
    flips = np.sum(table[:, 1:] != table[:, :-1], axis=1)  # (runs,)
    ordered = sorted((k for k in lock if k != "never")) + (["never"] if "never" in lock else [])
    return {"lock_in": {str(k): lock[k] for k in ordered},
            "flips": {"mean": float(flips.mean()), "runs_that_flip": float((flips > 0).mean()),
                      "flipped_and_solved": float(((flips > 0) & table[:, -1]).mean())}}


STEPS_SQL = """SELECT r.run_id, r.method, r.task_id, r.filmstrip, s.step, s.score
FROM steps s JOIN runs r USING (run_id)
WHERE {clause} AND r.status = 'ok' AND s.score IS NOT NULL ORDER BY r.method, r.run_id, s.step"""


def verdict_by_step(reader, where: RunFilter, verdict) -> tuple[list[dict], dict, str]:
    """Per (method, step): runs judged, right, share and its Wilson interval; per method: lock-in and flips on that
    verdict; and the per-step verdict's name (`verdict.per_step`, or the score's where it has none)."""
    from cos_ray.figures.verdicts import ScoreVerdict

    clause, values = where.where("r")
    label = verdict.step_label
    table, summary = [], {}
    for method, rows in pairs(reader.rows(STEPS_SQL.format(clause=clause), values), lambda r: r["method"]).items():
        judged = []
        for run in pairs(rows, lambda r: r["run_id"]).values():
            verdicts = verdict.per_step(run)
            if verdicts is None:
                verdicts, label = ScoreVerdict().per_step(run), ScoreVerdict.step_label
            judged.append(verdicts)
        width = min(len(v) for v in judged)
        right = np.array([v[-width:] for v in judged], dtype=bool)  # (runs, steps): the runs' last `width` steps
        steps = sorted({r["step"] for r in rows})[-width:]
        for j, step in enumerate(steps):
            k, n = int(right[:, j].sum()), len(right)
            low, high = wilson(k, n)
            table.append({"method": method, "step": step, "judged": n, "right": k, "share": k / n,
                          "share_ci_low": low, "share_ci_high": high})
        summary[method] = lock_in_and_flips(right)
    return table, summary, label


def figure(reader, where: RunFilter, verdict) -> Drawn:
    scores = step_curves(reader, where).to_pylist()
    if not scores:
        raise Unsupported("no steps with an x̂0 score (probes: {x0: ...} with a scorer)")
    shares, summary, label = verdict_by_step(reader, where, verdict)
    by_key = {(r["method"], r["step"]): r for r in shares}
    table = [{**row, **{k: v for k, v in by_key.get((row["method"], row["step"]), {}).items()
                        if k not in ("method", "step")}} for row in scores]
    lock = [{"method": m, "lock_in_step": step, "runs": count} for m, s in summary.items()
            for step, count in s["lock_in"].items()]
    flips = [{"method": m, **s["flips"]} for m, s in summary.items()]

    def plot(plt):
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
        for i, (method, rows) in enumerate(pairs(table, lambda r: r["method"]).items()):
            steps = [r["step"] for r in rows]
            a.plot(steps, [r["mean"] for r in rows], ls="--", marker=".", color=f"C{i}", label=f"{method}: mean score")
            a.fill_between(steps, [r["ci_low"] if r["ci_low"] is not None else r["mean"] for r in rows],
                           [r["ci_high"] if r["ci_high"] is not None else r["mean"] for r in rows],
                           color=f"C{i}", alpha=0.15)
            judged = [r for r in rows if "share" in r]
            a.errorbar([r["step"] for r in judged], [r["share"] for r in judged],
                       yerr=[[r["share"] - r["share_ci_low"] for r in judged],
                             [r["share_ci_high"] - r["share"] for r in judged]],
                       marker="o", color=f"C{i}", capsize=2, label=f"{method}: right")
        a.set_title(f"x̂0 per step\nright: {label}", fontsize=8)
        a.set(xlabel="denoising step", ylim=(-0.02, 1.02))
        a.legend(fontsize=7, loc="lower right")
        methods = list(summary)
        keys = list(dict.fromkeys(k for m in methods for k in summary[m]["lock_in"]))
        keys = sorted((k for k in keys if k != "never"), key=int) + (["never"] if "never" in keys else [])
        width = 0.8 / max(1, len(methods))
        for i, method in enumerate(methods):
            counts = summary[method]["lock_in"]
            b.bar(np.arange(len(keys)) + (i - (len(methods) - 1) / 2) * width, [counts.get(k, 0) for k in keys],
                  width, color=f"C{i}", label=method)
        b.set_xticks(range(len(keys)), keys, fontsize=7)
        b.set(title="lock-in step (right from then on)", xlabel="step", ylabel="runs")
        b.legend(fontsize=7)
        return fig

    runs = sum(s["runs"] for s in [r for r in table if r["step"] == table[0]["step"]])
    return Drawn("chain-of-steps", "Chain-of-Steps: x̂0 per step, lock-in, flips", label,
                 {"": table, "lock_in": lock, "flips": flips}, f"{runs} runs with x̂0 scores", plot)
