"""Method comparison (the dashboard's Compare view, and `cos-ray figures`' `compare` figure): mean score per method
and setting with 95% CIs, paired against the baseline by task and seed, and each ensemble against the best of N
baseline runs with the same seeds.

The aggregates (counts, means, standard deviations of scores and of paired differences) are computed in DuckDB;
only one row per setting comes back, and the 95% intervals come from those moments (`intervals`): scores lie in
[0, 1] and paired differences in [-1, 1], so their intervals are logit intervals that stay inside that range (a
t interval on a mostly-solved baseline passed 1). The p-value is the paired t-test's. Neither needs resampling, so
the numbers do not change between page loads (a bootstrap would) and stay cheap on 10^5 runs.

Pairing: a setting's runs on (model, sampler settings, task, seed) are averaged into one cell and matched with the
baseline runs of the same cell; the filters' sweep, family and status apply to both sides, method filters to the
compared side only. Best of N: an ensemble unit with seeds S..S+N−1 against the best baseline score among those N
seeds on the same task (the baseline's oracle pick); units whose seeds are not all in the baseline are left out.
"""

from __future__ import annotations

import pyarrow as pa

from cos_ray.figures.intervals import bounded_interval, difference_interval, paired_p, t_interval  # noqa: F401
from cos_ray.figures.run_filter import RunFilter, setting_label

SCORE_KINDS = {
    "score": "score",  # the task-specific score of the final video (the scorer's own rules)
    # VBVR's weighted five-dimension score (older stores kept it only in the scores JSON)
    "score_overall": "coalesce(score_overall, TRY_CAST(json_extract_string(scores, '$.overall') AS DOUBLE))",
}
BASELINE = "baseline"


def score_kinds(connection, where: RunFilter) -> list[str]:
    """The score kinds that have at least one value among the filtered runs."""
    clause, values = where.where()
    counts = ", ".join(f"count({expr}) AS {kind}" for kind, expr in SCORE_KINDS.items())
    row = connection.query(f"SELECT {counts} FROM runs WHERE {clause}", values).to_pylist()[0]
    return [kind for kind in SCORE_KINDS if row[kind]]


def _sources(where: RunFilter, kind: str) -> tuple[str, list]:
    """CTEs `r` (filtered runs with a value) and `base` (baseline cells), and their bound values."""
    expr = SCORE_KINDS[kind]
    clause, values = where.where()
    base_clause, base_values = where.where(methods=False)
    sql = f"""
        r AS (SELECT unit_id, method, coalesce(params, '{{}}') AS params, coalesce(model, '') AS model,
                     coalesce(settings, '') AS settings, task_id, seed, {expr} AS value
              FROM runs WHERE ({clause}) AND {expr} IS NOT NULL),
        base AS (SELECT coalesce(model, '') AS model, coalesce(settings, '') AS settings, task_id, seed,
                        avg({expr}) AS v
                 FROM runs WHERE ({base_clause}) AND method = '{BASELINE}' AND {expr} IS NOT NULL
                 GROUP BY ALL)"""
    return sql, [*values, *base_values]


def method_comparison(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Per (method, params): runs, mean and its CI; pairs with the baseline, mean difference, its CI and p-value."""
    sources, values = _sources(where, kind)
    rows = connection.query(f"""
        WITH {sources},
        cell AS (SELECT method, params, model, settings, task_id, seed, avg(value) AS v
                 FROM r WHERE method <> '{BASELINE}' GROUP BY ALL),
        means AS (SELECT method, params, count(*) AS runs, avg(value) AS mean, stddev_samp(value) AS sd
                  FROM r GROUP BY ALL),
        paired AS (SELECT c.method, c.params, count(*) AS pairs, avg(c.v) AS paired_mean,
                          avg(b.v) AS baseline_mean, avg(c.v - b.v) AS diff, stddev_samp(c.v - b.v) AS diff_sd
                   FROM cell c JOIN base b USING (model, settings, task_id, seed) GROUP BY ALL)
        SELECT * FROM means LEFT JOIN paired USING (method, params)
        ORDER BY method = '{BASELINE}' DESC, method, params""", values).to_pylist()
    out = []
    for row in rows:
        low, high = bounded_interval(row["mean"], row["sd"], row["runs"])
        pairs = row["pairs"] or 0
        diff_low, diff_high = difference_interval(row["diff"], row["diff_sd"], pairs)
        out.append({
            "setting": setting_label(row["method"], row["params"]), "method": row["method"], "params": row["params"],
            "runs": row["runs"], "mean": row["mean"], "ci_low": low, "ci_high": high,
            "pairs": pairs, "paired_mean": row["paired_mean"], "baseline_mean": row["baseline_mean"],
            "diff": row["diff"], "diff_ci_low": diff_low, "diff_ci_high": diff_high,
            "p_value": paired_p(row["diff"], row["diff_sd"], pairs),
        })
    return _table(out, COMPARISON_COLUMNS)


COMPARISON_COLUMNS = ("setting", "method", "params", "runs", "mean", "ci_low", "ci_high", "pairs", "paired_mean",
                      "baseline_mean", "diff", "diff_ci_low", "diff_ci_high", "p_value")
BEST_OF_N_COLUMNS = ("setting", "method", "params", "size", "units", "ensemble_mean", "ensemble_best", "best_of_n",
                     "baseline_mean", "diff", "diff_ci_low", "diff_ci_high", "p_value", "diff_best",
                     "diff_best_ci_low", "diff_best_ci_high")


def ensemble_vs_best_of_n(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Per ensemble setting: units, the ensemble's member mean and best member, the best of N baseline runs with the
    same seeds, and the paired differences (member mean − best of N; best member − best of N) with CIs."""
    sources, values = _sources(where, kind)
    rows = connection.query(f"""
        WITH {sources},
        members AS (SELECT r.unit_id, r.method, r.params, r.value, b.v AS base
                    FROM r LEFT JOIN base b USING (model, settings, task_id, seed)
                    WHERE starts_with(r.method, 'ensemble')),
        units AS (SELECT unit_id, method, params, count(*) AS size, avg(value) AS ensemble_mean,
                         max(value) AS ensemble_best, max(base) AS best_of_n, avg(base) AS baseline_mean
                  FROM members GROUP BY ALL HAVING count(base) = count(*))
        SELECT method, params, size, count(*) AS units, avg(ensemble_mean) AS ensemble_mean,
               avg(ensemble_best) AS ensemble_best, avg(best_of_n) AS best_of_n, avg(baseline_mean) AS baseline_mean,
               avg(ensemble_mean - best_of_n) AS diff, stddev_samp(ensemble_mean - best_of_n) AS diff_sd,
               avg(ensemble_best - best_of_n) AS diff_best, stddev_samp(ensemble_best - best_of_n) AS diff_best_sd
        FROM units GROUP BY ALL ORDER BY method, params, size""", values).to_pylist()
    out = []
    for row in rows:
        low, high = difference_interval(row["diff"], row["diff_sd"], row["units"])
        best_low, best_high = difference_interval(row["diff_best"], row["diff_best_sd"], row["units"])
        out.append({**{key: row[key] for key in BEST_OF_N_COLUMNS if key in row},
                    "setting": setting_label(row["method"], row["params"]),
                    "diff_ci_low": low, "diff_ci_high": high,
                    "p_value": paired_p(row["diff"], row["diff_sd"], row["units"]),
                    "diff_best_ci_low": best_low, "diff_best_ci_high": best_high})
    return _table(out, BEST_OF_N_COLUMNS)


def _table(rows: list[dict], columns) -> pa.Table:
    if not rows:
        return pa.table({column: pa.array([], pa.float64()) for column in columns})
    return pa.Table.from_pylist([{column: row.get(column) for column in columns} for row in rows])


ANSWER_COLUMNS = ("setting", "method", "params", "merge", "answer", "units", "runs", "mean", "ci_low", "ci_high")
ANSWERS = {  # the two named answers of an ensemble unit (cos_ray.probes.consensus)
    "members": "every member's own video (per-member scores)",
    "consensus": "the member whose final x̂0 is nearest the members' mean",
}


def ensemble_answers(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Per ensemble setting, its two answers, named: `members` (every member's score) and `consensus` (each unit's
    member nearest the members' mean, from the `layers` rows of kind `consensus`), with the merge mode (`stream` |
    `update`) the setting ran with. Empty when the store has no consensus rows (older stores: members only)."""
    expr = SCORE_KINDS[kind]
    clause, values = where.where()
    has_layers = "layers" in getattr(connection, "tables", {"layers"})
    consensus = ("(SELECT DISTINCT run_id FROM layers WHERE kind = 'consensus')" if has_layers
                 else "(SELECT NULL::VARCHAR AS run_id WHERE false)")
    rows = connection.query(f"""
        WITH r AS (SELECT run_id, unit_id, method, coalesce(params, '{{}}') AS params, {expr} AS value
                   FROM runs WHERE ({clause}) AND method = 'ensemble' AND {expr} IS NOT NULL),
        answers AS (SELECT *, 'members' AS answer FROM r
                    UNION ALL
                    SELECT r.*, 'consensus' AS answer FROM r JOIN {consensus} c USING (run_id))
        SELECT method, params, answer, count(DISTINCT unit_id) AS units, count(*) AS runs, avg(value) AS mean,
               stddev_samp(value) AS sd
        FROM answers GROUP BY ALL ORDER BY params, answer DESC""", values).to_pylist()
    out = []
    for row in rows:
        low, high = bounded_interval(row["mean"], row["sd"], row["runs"])
        out.append({"setting": setting_label(row["method"], row["params"]), "method": row["method"],
                    "params": row["params"], "merge": _merge_of(row["params"]), "answer": row["answer"],
                    "units": row["units"], "runs": row["runs"], "mean": row["mean"], "ci_low": low, "ci_high": high})
    return _table(out, ANSWER_COLUMNS)


def _merge_of(params: str | None) -> str | None:
    """`stream` | `update`: what an ensemble merged (a swap: what it swapped), from its params."""
    import json

    try:
        decoded = json.loads(params) if params else {}
    except ValueError:
        return None
    return decoded.get("merge", decoded.get("mode")) if isinstance(decoded, dict) else None


def figure(reader, where: RunFilter, verdict):
    """The Compare view's table as a figure: every setting's mean score with its 95% interval, its paired difference
    to the baseline, and the verdict's share of right answers (Wilson interval) beside it."""
    from cos_ray.figures.figure import Drawn, Unsupported
    from cos_ray.figures.intervals import wilson

    table = method_comparison(reader, where).to_pylist()
    if not table:
        raise Unsupported("no scored runs")
    clause, values = where.where()
    runs = reader.rows(f"SELECT run_id, method, coalesce(params, '{{}}') AS params, task_id, score, video FROM runs "
                       f"WHERE ({clause}) AND score IS NOT NULL", values)
    right = verdict.final(runs)
    for row in table:
        judged = [right[r["run_id"]] for r in runs if (r["method"], r["params"]) == (row["method"], row["params"])
                  and right[r["run_id"]] is not None]
        k, n = sum(judged), len(judged)
        row["judged"], row["right"], row["share"] = n, k, (k / n if n else None)
        row["share_ci_low"], row["share_ci_high"] = wilson(k, n)

    def plot(plt):
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.4))
        y = list(range(len(table)))
        for offset, (key, low, high, label) in enumerate((("mean", "ci_low", "ci_high", "mean score"),
                                                          ("share", "share_ci_low", "share_ci_high", verdict.name))):
            shown = [r for r in table if r[key] is not None]
            ax.errorbar([r[key] for r in shown], [y[table.index(r)] + 0.2 * offset for r in shown], fmt="o",
                        capsize=3, label=label,
                        xerr=[[r[key] - (r[low] if r[low] is not None else r[key]) for r in shown],
                              [(r[high] if r[high] is not None else r[key]) - r[key] for r in shown]])
        ax.set_yticks(y, [r["setting"] for r in table], fontsize=7)
        ax.invert_yaxis()
        ax.set(xlim=(-0.02, 1.02), xlabel="final video", title="methods: mean score and right answers, 95% intervals")
        ax.legend(fontsize=7)
        return fig

    return Drawn("compare", "Methods compared with the baseline", verdict.label, {"": table},
                 f"{sum(r['runs'] for r in table)} scored runs", plot)
