"""The model card's ensemble table: the training-free ensemble against the baseline and best-of-3, on the "solved"
verdict (score >= threshold AND the ground-truth path) and on the task score, with paired 95% CIs.

"Solved" is not a store column: each run's verdict is `solved.stored_run_solved` (its stored score, the route read
from its video's last frame against the task drawn again from the sweep's generator spec). The unit of pairing is an
ensemble unit: task T, start seed S, members S..S+2. Against it:
- `baseline (same seeds)`: the mean over the baseline runs of T at seeds S..S+2 (the members' own noise, unmerged);
- `best-of-3`: the best of those three baselines (an oracle pick, as in the paper's comparison);
- the ensemble's answers: `members` (their mean), `consensus` (the member nearest the members' mean x̂0,
  docs/probes.md) and `best member` (an oracle pick, comparable to best-of-3).
Only units whose three seeds all have a baseline enter. Differences are paired per unit; CIs are Student-t on the
per-unit differences (`cos_ray.dashboard.compare.t_interval`), as the dashboard's Compare view computes them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

ENSEMBLE_SQL = """select r.run_id, r.unit_id, r.member, r.task_id, r.seed, r.seeds, r.method, r.params, r.score, r.video,
  c.run_id is not null as consensus
from runs r left join (select run_id from layers where kind = 'consensus') c using (run_id)
where r.status = 'ok' and r.method in ('baseline', 'first_frame', 'ensemble') order by r.run_id"""


def judged_runs(store_uri: str) -> list[dict]:
    """Every ok baseline, first_frame and ensemble run of the store with `solved` (`solved.stored_run_solved`)."""
    from cos_ray.media import read_video
    from cos_ray.training.figures_common import generated_samples, rows
    from cos_ray.training.solved import stored_run_solved

    samples = generated_samples(store_uri)
    runs = rows(store_uri, ENSEMBLE_SQL)
    for run in runs:
        last = read_video(Path(store_uri) / run["video"])[-1]  # (H, W, 3)
        run["solved"] = stored_run_solved(run["score"], last, samples[run["task_id"]].meta)
    return runs


def _paired(differences: list[float]) -> dict:
    from cos_ray.dashboard.compare import paired_p, t_interval

    values = np.asarray(differences, dtype=float)
    n = len(values)
    sd = float(values.std(ddof=1)) if n > 1 else None
    mean = float(values.mean()) if n else None
    low, high = t_interval(mean, sd, n)
    return {"diff": mean, "ci": (low, high), "p": paired_p(mean, sd, n)}


def ensemble_table(rows: list[dict], metric: str = "solved") -> list[dict]:
    """One row per ensemble setting (merge, steps): units, the ensemble's three answers, the baselines of the same
    seeds and best-of-3, and the paired differences with 95% CIs. metric: `solved` or `score`."""
    value = (lambda r: float(r["solved"])) if metric == "solved" else (lambda r: float(r["score"]))
    baseline = {(r["task_id"], r["seed"]): value(r) for r in rows if r["method"] == "baseline"}
    units = defaultdict(list)
    for r in rows:
        if r["method"] == "ensemble":
            units[(r["params"], r["unit_id"])].append(r)
    settings = defaultdict(list)
    for (params, _), members in units.items():
        seeds = [m["seed"] for m in members]
        bases = [baseline.get((members[0]["task_id"], seed)) for seed in seeds]
        if None in bases:
            continue
        consensus = [value(m) for m in members if m["consensus"]]
        settings[params].append({"members": np.mean([value(m) for m in members]), "best_member": max(map(value, members)),
                                 "consensus": consensus[0] if consensus else np.nan,
                                 "baseline": np.mean(bases), "best_of_3": max(bases)})
    table = []
    for params, cells in sorted(settings.items(), key=lambda kv: (json.loads(kv[0])["merge"], json.loads(kv[0])["steps"])):
        p = json.loads(params)
        column = {key: [c[key] for c in cells] for key in cells[0]}
        table.append({"merge": p["merge"], "steps": p["steps"], "layers": f"{p['layers'][0]}-{p['layers'][-1]}",
                      "units": len(cells), **{key: float(np.nanmean(v)) for key, v in column.items()},
                      "members_vs_baseline": _paired(np.subtract(column["members"], column["baseline"])),
                      "consensus_vs_baseline": _paired(np.subtract(column["consensus"], column["baseline"])),
                      "best_member_vs_best_of_3": _paired(np.subtract(column["best_member"], column["best_of_3"]))})
    return table


def markdown(table: list[dict], metric: str) -> str:
    """The card's table: one line per setting, differences as `+0.01 [-0.02, +0.04]`."""
    def diff(d):
        low, high = d["ci"]
        return f"{d['diff']:+.3f} [{low:+.3f}, {high:+.3f}]" if low is not None else f"{d['diff']:+.3f}"

    lines = [f"| merge | steps | units | baseline (same seeds) | members | members − baseline | consensus | "
             f"consensus − baseline | best-of-3 | best member | best member − best-of-3 |",
             "|" + "---|" * 11]
    for row in table:
        lines.append(f"| {row['merge']} | {row['steps'][0]}–{row['steps'][-1]} | {row['units']} | {row['baseline']:.3f} "
                     f"| {row['members']:.3f} | {diff(row['members_vs_baseline'])} | {row['consensus']:.3f} "
                     f"| {diff(row['consensus_vs_baseline'])} | {row['best_of_3']:.3f} | {row['best_member']:.3f} "
                     f"| {diff(row['best_member_vs_best_of_3'])} |")
    return f"{metric}:\n" + "\n".join(lines)


def report(store_uri: str) -> dict:
    """Both tables (solved, score) and the solved rate of every method's runs (first_frame: the floor)."""
    rows = judged_runs(store_uri)
    methods = sorted({r["method"] for r in rows})
    return {"runs": len(rows),
            "solved_by_method": {m: float(np.mean([r["solved"] for r in rows if r["method"] == m])) for m in methods},
            "tables": {metric: ensemble_table(rows, metric) for metric in ("solved", "score")}}


def plot_ensemble(store_uri: str, out: Path) -> dict:
    """`report` and a figure: per setting, the paired differences (members − baseline, consensus − baseline, best
    member − best-of-3) in solved rate with their 95% CIs."""
    from cos_ray.training.figures_common import pyplot, save

    answer = report(store_uri)
    table = answer["tables"]["solved"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    comparisons = (("members_vs_baseline", "members − baseline"), ("consensus_vs_baseline", "consensus − baseline"),
                   ("best_member_vs_best_of_3", "best member − best-of-3"))
    for k, (key, label) in enumerate(comparisons):
        x = np.arange(len(table)) + (k - 1) * 0.25
        diffs = [row[key]["diff"] for row in table]
        errors = np.array([[d - (row[key]["ci"][0] if row[key]["ci"][0] is not None else d),
                            (row[key]["ci"][1] if row[key]["ci"][1] is not None else d) - d]
                           for row, d in zip(table, diffs)]).T  # (2, settings)
        ax.errorbar(x, diffs, yerr=errors, fmt="o", capsize=3, label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(table)), [f"{r['merge']}\nsteps {r['steps'][0]}-{r['steps'][-1]}" for r in table],
                  fontsize=8)
    units = table[0]["units"] if table else 0
    ax.set(ylabel="difference in solved rate", title=f"ensemble of 3 (layers 20-29) on {units} task x seed units, "
           "paired 95% CIs")
    ax.legend(fontsize=8)
    save(fig, out)
    return answer
