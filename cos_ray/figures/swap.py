"""Fig. 6: whose answer run A draws after block k took run B's values - A's own, B's, or neither - by swapped layer,
per swap mode (`update` | `stream`) and step(s).

`swap_outcomes` is the dashboard's Probes view's table (A's mean score after the swap, with A's and B's baselines);
`figure` draws it per (mode, steps) with the verdict's share of runs that kept A's answer, and - where the verdict
can read B's answer on A's board (`solved` on mazes: B's route's cells) - the share that drew B's.
Store: jobs/paper/fig6-swap-by-layer*.yaml.
"""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa

from cos_ray.figures.comparison import SCORE_KINDS
from cos_ray.figures.figure import Drawn, Unsupported, pairs
from cos_ray.figures.intervals import bounded_interval, wilson
from cos_ray.figures.presence import SWAP
from cos_ray.figures.run_filter import RunFilter

ANSWERS = ("a", "b", "neither")


def swap_outcomes(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Latent-swap outcome by the layer swapped: run A's mean score after taking run B's layer, next to the
    baselines of A (same task and seed) and of B (`params.source_task`, same seed) - which answer did A keep?"""
    expr = SCORE_KINDS[kind]
    clause, values = where.where()
    base_clause, base_values = where.where(methods=False)
    rows = connection.query(f"""
        WITH s AS (SELECT TRY_CAST(json_extract_string(params, '$.{SWAP[1]}') AS INTEGER) AS position, task_id,
                          json_extract_string(params, '$.source_task') AS source_task, seed,
                          coalesce(model, '') AS model, coalesce(settings, '') AS settings, {expr} AS v
                   FROM runs WHERE ({clause}) AND method = '{SWAP[0]}' AND {expr} IS NOT NULL),
        base AS (SELECT task_id, seed, coalesce(model, '') AS model, coalesce(settings, '') AS settings,
                        avg({expr}) AS v
                 FROM runs WHERE ({base_clause}) AND method = 'baseline' AND {expr} IS NOT NULL GROUP BY ALL)
        SELECT '{SWAP[0]}' AS method, s.position, count(*) AS runs, avg(s.v) AS mean, stddev_samp(s.v) AS sd,
               avg(a.v) AS a_alone, avg(b.v) AS b_alone
        FROM s LEFT JOIN base a ON a.task_id = s.task_id AND a.seed = s.seed AND a.model = s.model
                                   AND a.settings = s.settings
               LEFT JOIN base b ON b.task_id = s.source_task AND b.seed = s.seed AND b.model = s.model
                                   AND b.settings = s.settings
        GROUP BY ALL ORDER BY 2""", [*values, *base_values]).to_pylist()
    for row in rows:
        row["ci_low"], row["ci_high"] = bounded_interval(row["mean"], row.pop("sd"), row["runs"])
    columns = ("method", "position", "runs", "mean", "a_alone", "b_alone", "ci_low", "ci_high")
    return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.float64()) for c in columns})


def steps_label(step) -> str:
    """A swap's `params.step`: one step (`0`) or the steps of a range (`[0, 1, 2]` -> `0-2`)."""
    return str(step) if isinstance(step, int) else f"{min(step)}-{max(step)}"


RUNS_SQL = """SELECT run_id, task_id, seed, score, video, params,
  json_extract(params, '$.mode')::VARCHAR AS mode, json_extract(params, '$.step')::VARCHAR AS steps,
  TRY_CAST(json_extract_string(params, '$.layer') AS INTEGER) AS position
FROM runs WHERE ({clause}) AND status = 'ok' AND method = 'swap'"""


def figure(reader, where: RunFilter, verdict) -> Drawn:
    clause, values = dataclasses.replace(where, methods=("swap",)).where()
    runs = reader.rows(RUNS_SQL.format(clause=clause), values)
    if not runs:
        raise Unsupported("no swap runs")
    right = verdict.final(runs)
    table = []
    for (mode, steps), mine in pairs(runs, lambda r: (r["mode"], r["steps"])).items():
        params = tuple((key, (value,)) for key, value in (("mode", mode), ("step", steps)) if value is not None)
        scores = swap_outcomes(reader, dataclasses.replace(where, methods=("swap",), params=params)).to_pylist()
        for row in scores:
            cell = [r for r in mine if r["position"] == row["position"]]
            judged = [right[r["run_id"]] for r in cell if right[r["run_id"]] is not None]
            k, n = sum(judged), len(judged)
            low, high = wilson(k, n)
            row.update({"mode": json.loads(mode) if mode else None,
                        "steps": steps_label(json.loads(steps)) if steps else None, "judged": n,
                        "kept_a": k, "kept_a_share": k / n if n else None, "kept_a_ci_low": low,
                        "kept_a_ci_high": high})
            answers = [verdict.whose_answer(verdict.video(r["video"]), r, json.loads(r["params"]).get("source_task"))
                       for r in cell] if hasattr(verdict, "video") else []
            if answers and None not in answers:
                for name in ANSWERS:
                    row[f"{name}_share"] = answers.count(name) / len(answers)
            table.append(row)
    whose = any("b_share" in r for r in table)

    def plot(plt):
        groups = pairs(table, lambda r: (r["mode"], r["steps"]))
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for i, ((mode, steps), rows) in enumerate(groups.items()):
            x = [r["position"] for r in rows]
            axes[0].plot(x, [r["mean"] for r in rows], marker=".", color=f"C{i}",
                         label=f"A swapped ({mode}, steps {steps})")
            axes[0].fill_between(x, [r["ci_low"] if r["ci_low"] is not None else r["mean"] for r in rows],
                                 [r["ci_high"] if r["ci_high"] is not None else r["mean"] for r in rows],
                                 color=f"C{i}", alpha=0.15)
            share = "b_share" if whose else "kept_a_share"
            axes[1].plot(x, [r.get(share) for r in rows], marker="o", color=f"C{i}",
                         label=f"{'drew B' if whose else 'kept A'} ({mode}, steps {steps})")
        first = table[0]
        if first["a_alone"] is not None:
            axes[0].axhline(first["a_alone"], color="k", lw=0.8, ls="--", label=f"A alone ({first['a_alone']:.3f})")
        if first["b_alone"] is not None:
            axes[0].axhline(first["b_alone"], color="0.5", lw=0.8, ls=":", label=f"B alone ({first['b_alone']:.3f})")
        axes[0].set(title="mean task score after the swap", xlabel="swapped layer k", ylim=(-0.02, 1.02))
        axes[1].set(title="B's answer drawn on A's board" if whose else f"A's answer kept ({verdict.name})",
                    xlabel="swapped layer k", ylim=(-0.02, 1.02), ylabel="share of swapped runs")
        for ax in axes:
            ax.axvspan(19.5, 29.5, color="0.92", zorder=0)
            ax.legend(fontsize=6)
        return fig

    return Drawn("fig6", "Fig. 6: latent swap by layer", verdict.label, {"": table}, f"{len(runs)} swapped runs", plot)
