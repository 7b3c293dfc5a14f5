"""Fig. 3b: the final answer after every frame's latent is replaced by noise at step s, against latent frame f
replaced at every step - how much each kind of noise costs, with the unperturbed baseline as the reference line.

`by_parameter` / `noise_outcomes` / `reference_levels` are the dashboard's Probes view's tables (mean score per
position with its 95% interval); `figure` adds the verdict's share of right answers (Wilson interval) per position.
Store: jobs/paper/fig3b-noise-step-vs-frame*.yaml.
"""

from __future__ import annotations

import pyarrow as pa

from cos_ray.figures.comparison import SCORE_KINDS
from cos_ray.figures.figure import Drawn, Unsupported, pairs
from cos_ray.figures.intervals import bounded_interval, wilson
from cos_ray.figures.presence import NOISE, REFERENCES
from cos_ray.figures.run_filter import RunFilter


def by_parameter(connection, where: RunFilter, methods: dict, kind: str) -> pa.Table:
    """Per (method, position = the method's swept parameter; null for a method without one): runs, mean score and
    its 95% interval (inside [0, 1])."""
    expr = SCORE_KINDS[kind]
    clause, values = where.where()
    cases = " ".join(f"WHEN '{method}' THEN TRY_CAST(json_extract_string(params, '$.{key}') AS INTEGER)"
                     for method, key in methods.items() if key)
    rows = connection.query(f"""
        SELECT method, CASE method {cases or "WHEN NULL THEN NULL"} ELSE NULL END AS position, count(*) AS runs,
               avg({expr}) AS mean, stddev_samp({expr}) AS sd
        FROM runs WHERE ({clause}) AND method IN ({', '.join('?' * len(methods))}) AND {expr} IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""", [*values, *methods]).to_pylist()
    for row in rows:
        row["ci_low"], row["ci_high"] = bounded_interval(row["mean"], row.pop("sd"), row["runs"])
    columns = ("method", "position", "runs", "mean", "ci_low", "ci_high")
    return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.float64()) for c in columns})


def noise_outcomes(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Scores under noise: `noise_at_step` by step and `noise_at_frame` by (latent) frame."""
    return by_parameter(connection, where, NOISE, kind)


def reference_levels(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Mean score of the reference methods (baseline, first_frame, ground_truth) among the filtered runs."""
    expr = SCORE_KINDS[kind]
    clause, values = where.where(methods=False)
    return connection.query(f"""
        SELECT method, count(*) AS runs, avg({expr}) AS mean FROM runs
        WHERE ({clause}) AND method IN ({', '.join('?' * len(REFERENCES))}) AND {expr} IS NOT NULL
        GROUP BY 1 ORDER BY 1""", [*values, *REFERENCES])


RUNS_SQL = """SELECT run_id, method, task_id, score, video,
  CASE method WHEN 'noise_at_step' THEN TRY_CAST(json_extract_string(params, '$.step') AS INTEGER)
              WHEN 'noise_at_frame' THEN TRY_CAST(json_extract_string(params, '$.frame') AS INTEGER) END AS position
FROM runs WHERE ({clause}) AND status = 'ok' AND method IN ('baseline', 'noise_at_step', 'noise_at_frame')"""


def judged_shares(reader, where: RunFilter, verdict, sql: str = RUNS_SQL, key=("method", "position")) -> dict:
    """{(key values): {judged, right, share, share_ci_low, share_ci_high}} over the runs `sql` selects."""
    clause, values = where.where()
    runs = reader.rows(sql.format(clause=clause), values)
    right = verdict.final(runs)
    out = {}
    for group, rows in pairs(runs, lambda r: tuple(r[k] for k in key)).items():
        judged = [right[r["run_id"]] for r in rows if right[r["run_id"]] is not None]
        k, n = sum(judged), len(judged)
        low, high = wilson(k, n)
        out[group] = {"judged": n, "right": k, "share": k / n if n else None, "share_ci_low": low,
                      "share_ci_high": high}
    return out


def figure(reader, where: RunFilter, verdict) -> Drawn:
    scores = by_parameter(reader, where, {"baseline": None, **NOISE}, "score").to_pylist()
    if not any(r["method"] in NOISE for r in scores):
        raise Unsupported("no noise_at_step / noise_at_frame runs with a score")
    shares = judged_shares(reader, where, verdict)
    table = [{**r, **shares.get((r["method"], r["position"]), {})} for r in scores]
    base = next((r for r in table if r["method"] == "baseline"), None)

    def plot(plt):
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), sharey=True, gridspec_kw={"width_ratios": [3, 1.6]})
        for ax, method, label in ((axes[0], "noise_at_step", "noised denoising step s (every frame)"),
                                  (axes[1], "noise_at_frame", "noised latent frame f (every step)")):
            cells = [r for r in table if r["method"] == method]
            at = [r["position"] for r in cells]
            if cells and cells[0].get("share") is not None:
                ax.errorbar(at, [r["share"] for r in cells], capsize=3, marker="o", color="C2",
                            yerr=[[r["share"] - r["share_ci_low"] for r in cells],
                                  [r["share_ci_high"] - r["share"] for r in cells]], label="right (verdict)")
            ax.plot(at, [r["mean"] for r in cells], marker=".", ls="--", color="C0", label="mean final score")
            if base:
                if base.get("share") is not None:
                    ax.axhline(base["share"], color="C2", lw=0.8, ls="-.",
                               label=f"baseline right ({base['share']:.2f})")
                ax.axhline(base["mean"], color="C0", lw=0.8, ls=":", label=f"baseline score ({base['mean']:.2f})")
            ax.set(xlabel=label, xticks=at, ylim=(-0.02, 1.02))
            if cells:
                ax.set_title(f"{method} ({cells[0]['runs']} runs per point)", fontsize=9)
        axes[0].set_ylabel("final video")
        axes[0].legend(loc="lower left", fontsize=7)
        return fig

    return Drawn("fig3b", "Fig. 3b: noise at a step vs at a frame", verdict.label, {"": table},
                 f"{sum(r['runs'] for r in table)} scored runs", plot)
