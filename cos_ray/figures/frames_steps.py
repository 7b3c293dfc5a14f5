"""Frames x steps: the final answer over a grid of sampler settings - the number of frames and of denoising steps -
per method: runs, the verdict's share of right answers (Wilson interval) and the mean score (its 95% interval).
Store: jobs/paper/frames-and-steps*.yaml (a model trained on 9 frames asked for 17 and 33)."""

from __future__ import annotations

from cos_ray.figures.figure import Drawn, Unsupported, pairs
from cos_ray.figures.intervals import bounded_interval, wilson
from cos_ray.figures.run_filter import RunFilter

GRID_SQL = """SELECT method, TRY_CAST(json_extract_string(settings, '$.frames') AS INTEGER) AS frames,
  TRY_CAST(json_extract_string(settings, '$.steps') AS INTEGER) AS steps,
  count(*) AS runs, avg(score) AS mean, stddev_samp(score) AS sd
FROM runs WHERE ({clause}) AND status = 'ok' AND score IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3"""
RUNS_SQL = """SELECT run_id, method, task_id, score, video,
  TRY_CAST(json_extract_string(settings, '$.frames') AS INTEGER) AS frames,
  TRY_CAST(json_extract_string(settings, '$.steps') AS INTEGER) AS steps
FROM runs WHERE ({clause}) AND status = 'ok' AND score IS NOT NULL"""


def figure(reader, where: RunFilter, verdict) -> Drawn:
    clause, values = where.where()
    table = reader.rows(GRID_SQL.format(clause=clause), values)
    if len({(r["frames"], r["steps"]) for r in table}) < 2:
        raise Unsupported("one (frames, steps) setting only: no sampler grid over frames or steps")
    runs = reader.rows(RUNS_SQL.format(clause=clause), values)
    right = verdict.final(runs)
    groups = pairs(runs, lambda r: (r["method"], r["frames"], r["steps"]))
    for row in table:
        row["ci_low"], row["ci_high"] = bounded_interval(row["mean"], row.pop("sd"), row["runs"])
        judged = [right[r["run_id"]] for r in groups[(row["method"], row["frames"], row["steps"])]
                  if right[r["run_id"]] is not None]
        k, n = sum(judged), len(judged)
        row["judged"], row["right"], row["share"] = n, k, (k / n if n else None)
        row["share_ci_low"], row["share_ci_high"] = wilson(k, n)

    def plot(plt):
        import numpy as np

        methods = pairs(table, lambda r: r["method"])
        fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods) + 0.8, 3.2), squeeze=False)
        for ax, (method, rows) in zip(axes[0], methods.items()):
            frames, steps = sorted({r["frames"] for r in rows}), sorted({r["steps"] for r in rows})
            cells = {(r["frames"], r["steps"]): r for r in rows}
            grid = np.array([[cells[(f, s)]["share"] if (f, s) in cells and cells[(f, s)]["share"] is not None
                              else np.nan for f in frames] for s in steps])  # (steps, frames)
            image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower")
            for i, s in enumerate(steps):
                for j, f in enumerate(frames):
                    if (f, s) in cells:
                        ax.text(j, i, f"{cells[(f, s)]['right']}/{cells[(f, s)]['judged']}", ha="center",
                                va="center", fontsize=7, color="w")
            ax.set_xticks(range(len(frames)), frames)
            ax.set_yticks(range(len(steps)), steps)
            ax.set(title=method, xlabel="frames", ylabel="denoising steps")
        fig.colorbar(image, ax=list(axes[0]), fraction=0.046, label=f"right ({verdict.name})")
        return fig

    return Drawn("frames-steps", "Frames x steps: the answer over the sampler grid", verdict.label, {"": table},
                 f"{sum(r['runs'] for r in table)} scored runs", plot)
