"""The model card's ensemble table: the training-free ensemble against the baseline and best-of-3, on the "solved"
verdict (score >= threshold AND the ground-truth path) and on the task score, with paired 95% CIs.

"Solved" is not a store column: each run's verdict is `solved.stored_run_solved` (its stored score, the route read
from its video's last frame against the task drawn again from the sweep's generator spec). The unit of pairing is an
ensemble unit: task T, start seed S, members S..S+2. Against it:
- `baseline (same seeds)`: the mean over the baseline runs of T at seeds S..S+2 (the members' own noise, unmerged);
- `best-of-3`: the best of those three baselines (an oracle pick, as in the paper's comparison);
- `baseline medoid`: the baseline video nearest the three baselines' mean (pixels) - the consensus rule without the
  merge, the control for `consensus` (picking the typical of 3 runs helps by itself);
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
    """Every ok baseline, first_frame and ensemble run of the store with `solved` (`solved.stored_run_solved`);
    baselines also carry their video's `frames` `# (frames, H, W, 3)` uint8 (the medoid control needs them)."""
    from cos_ray.media import read_video
    from cos_ray.training.figures_common import generated_samples, rows
    from cos_ray.training.solved import stored_run_solved

    samples = generated_samples(store_uri)
    runs = rows(store_uri, ENSEMBLE_SQL)
    for run in runs:
        frames = read_video(Path(store_uri) / run["video"])  # (frames, H, W, 3)
        run["solved"] = stored_run_solved(run["score"], frames[-1], samples[run["task_id"]].meta)
        if run["method"] == "baseline":
            run["frames"] = frames
    return runs


def medoid(videos: list[np.ndarray]) -> int:
    """Index of the video nearest (L2, pixels) the mean of `videos` - the consensus rule applied to runs that were
    never merged, so that "the consensus member beats a member" is not mistaken for an effect of the merge."""
    stack = np.stack(videos).astype(np.float32)  # (n, frames, H, W, 3)
    mean = stack.mean(axis=0)
    return int(np.argmin([np.linalg.norm(video - mean) for video in stack]))


def _paired(differences) -> dict:
    from cos_ray.dashboard.compare import paired_p, t_interval

    values = np.asarray(differences, dtype=float)
    n = len(values)
    sd = float(values.std(ddof=1)) if n > 1 else None
    mean = float(values.mean()) if n else None
    low, high = t_interval(mean, sd, n)
    return {"diff": mean, "ci": (low, high), "p": paired_p(mean, sd, n)}


COMPARISONS = {  # name -> (the ensemble's answer, what it is paired with, the figure's label)
    "members_vs_baseline": ("members", "baseline", "members − baseline"),
    "consensus_vs_baseline": ("consensus", "baseline", "consensus − baseline"),
    "consensus_vs_baseline_medoid": ("consensus", "baseline_medoid", "consensus − baseline medoid"),
    "best_member_vs_best_of_3": ("best_member", "best_of_3", "best member − best-of-3"),
}


def ensemble_table(rows: list[dict], metric: str = "solved") -> list[dict]:
    """One row per ensemble setting (merge, steps): units, the ensemble's answers (members' mean, consensus, best
    member), the baselines of the same seeds (mean, medoid, best-of-3) and the COMPARISONS with 95% CIs.
    metric: `solved` or `score`. The medoid needs `frames` on the baseline rows (NaN without)."""
    value = (lambda r: float(r["solved"])) if metric == "solved" else (lambda r: float(r["score"]))
    baseline = {(r["task_id"], r["seed"]): r for r in rows if r["method"] == "baseline"}
    units = defaultdict(list)
    for r in rows:
        if r["method"] == "ensemble":
            units[(r["params"], r["unit_id"])].append(r)
    medoids: dict[tuple, float] = {}
    settings = defaultdict(list)
    for (params, _), members in units.items():
        members = sorted(members, key=lambda m: m["seed"])
        key = tuple((members[0]["task_id"], m["seed"]) for m in members)
        bases = [baseline.get(k) for k in key]
        if None in bases:
            continue
        if key not in medoids:
            medoids[key] = value(bases[medoid([b["frames"] for b in bases])]) if "frames" in bases[0] else np.nan
        consensus = [value(m) for m in members if m["consensus"]]
        settings[params].append({"members": np.mean([value(m) for m in members]), "best_member": max(map(value, members)),
                                 "consensus": consensus[0] if consensus else np.nan,
                                 "baseline": np.mean([value(b) for b in bases]), "baseline_medoid": medoids[key],
                                 "best_of_3": max(map(value, bases))})
    table = []
    order = lambda kv: (json.loads(kv[0])["merge"], json.loads(kv[0])["steps"])  # noqa: E731
    for params, cells in sorted(settings.items(), key=order):
        p = json.loads(params)
        column = {key: np.array([c[key] for c in cells]) for key in cells[0]}
        table.append({"merge": p["merge"], "steps": p["steps"], "layers": f"{p['layers'][0]}-{p['layers'][-1]}",
                      "units": len(cells), **{key: float(np.mean(v)) for key, v in column.items()},
                      **{name: _paired(column[a] - column[b]) for name, (a, b, _) in COMPARISONS.items()}})
    return table


def markdown(table: list[dict], metric: str) -> str:
    """The card's table: one line per setting, an answer with its paired difference `0.61 (+0.01 [-0.02, +0.04])`."""
    def diff(d) -> str:
        low, high = d["ci"]
        return f"{d['diff']:+.3f}" + (f" [{low:+.3f}, {high:+.3f}]" if low is not None else "")

    lines = [f"{metric}:", "| merge | steps | units | baseline (same seeds) | members (− baseline) | consensus (− baseline) "
             "| baseline medoid | consensus − baseline medoid | best-of-3 | best member (− best-of-3) |", "|" + "---|" * 10]
    for row in table:
        lines.append(f"| {row['merge']} | {row['steps'][0]}–{row['steps'][-1]} | {row['units']} | {row['baseline']:.3f} "
                     f"| {row['members']:.3f} ({diff(row['members_vs_baseline'])}) "
                     f"| {row['consensus']:.3f} ({diff(row['consensus_vs_baseline'])}) | {row['baseline_medoid']:.3f} "
                     f"| {diff(row['consensus_vs_baseline_medoid'])} | {row['best_of_3']:.3f} "
                     f"| {row['best_member']:.3f} ({diff(row['best_member_vs_best_of_3'])}) |")
    return "\n".join(lines)


def report(store_uri: str) -> dict:
    """Both tables (solved, score) and the solved rate of every method's runs (first_frame: the floor)."""
    rows = judged_runs(store_uri)
    methods = sorted({r["method"] for r in rows})
    return {"runs": len(rows),
            "solved_by_method": {m: float(np.mean([r["solved"] for r in rows if r["method"] == m])) for m in methods},
            "tables": {metric: ensemble_table(rows, metric) for metric in ("solved", "score")}}


def plot_ensemble(store_uri: str, out: Path) -> dict:
    """`report` and a figure: per setting, the COMPARISONS' paired differences in solved rate with their 95% CIs."""
    from cos_ray.training.figures_common import pyplot, save

    answer = report(store_uri)
    table = answer["tables"]["solved"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k, (key, (_, _, label)) in enumerate(COMPARISONS.items()):
        x = np.arange(len(table)) + (k - 1.5) * 0.2
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
