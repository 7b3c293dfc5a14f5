"""The ensemble table: the training-free ensemble against the baseline and best-of-N, on a verdict (`verdicts`: the
task score at its threshold, EvalKit's, or `solved` - score AND the ground-truth route) and on the task score, with
paired 95% CIs (the model card's table; `cos-ray figures --only ensemble`).

The verdict is not a store column: each run is judged by the verdict (`solved`: its stored score, the route read
from its video's last frame against the task drawn again from the sweep's generator spec). The unit of pairing is an
ensemble unit: task T, start seed S, members S..S+2. Against it:
- `baseline (same seeds)`: the mean over the baseline runs of T at seeds S..S+2 (the members' own noise, unmerged);
- `best-of-3`: the best of those three baselines (an oracle pick, as in the paper's comparison);
- `baseline medoid`: the baseline video nearest the three baselines' mean (pixels) - the consensus rule without the
  merge, the control for `consensus` (picking the typical of 3 runs helps by itself);
- the ensemble's answers: `members` (their mean), `consensus` (the member nearest the members' mean x̂0,
  docs/probes.md) and `best member` (an oracle pick, comparable to best-of-3).
Only units whose three seeds all have a baseline enter. Differences are paired per unit; CIs are Student-t on the
per-unit differences (`cos_ray.figures.intervals.t_interval`); the Compare view's best-of-N table
(`comparison.ensemble_vs_best_of_n`) pairs the same units on the task score.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from cos_ray.figures.figure import Drawn, Unsupported
from cos_ray.figures.intervals import paired_difference

ENSEMBLE_SQL = """SELECT r.run_id, r.unit_id, r.member, r.task_id, r.seed, r.seeds, r.method, r.params, r.score,
  r.video, c.run_id IS NOT NULL AS consensus
FROM runs r LEFT JOIN (SELECT DISTINCT run_id FROM layers WHERE kind = 'consensus') c USING (run_id)
WHERE {clause} AND r.status = 'ok' AND r.method IN ('baseline', 'first_frame', 'ensemble') ORDER BY r.run_id"""


def judged_runs(reader, where, verdict) -> list[dict]:
    """Every ok baseline, first_frame and ensemble run of the filtered runs with `solved` (the verdict's; runs it
    cannot judge are left out); baselines also carry their video's `frames` `# (frames, H, W, 3)` uint8 (the medoid
    control needs them)."""
    from cos_ray.media import read_video

    clause, values = where.where("r")
    runs = reader.rows(ENSEMBLE_SQL.format(clause=clause), values)
    right = verdict.final(runs)
    runs = [r for r in runs if right[r["run_id"]] is not None]
    for run in runs:
        run["solved"] = right[run["run_id"]]
        if run["method"] == "baseline" and run["video"]:
            run["frames"] = read_video(Path(reader.uri) / run["video"])  # (frames, H, W, 3)
    return runs


def medoid(videos: list[np.ndarray]) -> int:
    """Index of the video nearest (L2, pixels) the mean of `videos` - the consensus rule applied to runs that were
    never merged, so that "the consensus member beats a member" is not mistaken for an effect of the merge."""
    stack = np.stack(videos).astype(np.float32)  # (n, frames, H, W, 3)
    mean = stack.mean(axis=0)
    return int(np.argmin([np.linalg.norm(video - mean) for video in stack]))


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
                      **{name: paired_difference(column[a] - column[b]) for name, (a, b, _) in COMPARISONS.items()}})
    return table


def markdown(table: list[dict], metric: str) -> str:
    """The card's table: one line per setting, an answer with its paired difference `0.61 (+0.01 [-0.02, +0.04])`."""
    def diff(d) -> str:
        low, high = d["ci_low"], d["ci_high"]
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


def report(reader, where, verdict) -> dict:
    """Both tables (the verdict's, the score's) and the verdict's rate for every method's runs (first_frame: the
    floor)."""
    rows = judged_runs(reader, where, verdict)
    methods = sorted({r["method"] for r in rows})
    return {"runs": len(rows),
            "solved_by_method": {m: float(np.mean([r["solved"] for r in rows if r["method"] == m])) for m in methods},
            "tables": {metric: ensemble_table(rows, metric) for metric in ("solved", "score")}}


def _flat(table: list[dict], metric: str) -> list[dict]:
    """The table as CSV rows: each comparison's diff, CI and p in columns of their own."""
    out = []
    for row in table:
        flat = {"metric": metric, "merge": row["merge"], "steps": f"{row['steps'][0]}-{row['steps'][-1]}",
                "layers": row["layers"], "units": row["units"]}
        for key in ("baseline", "members", "consensus", "best_member", "baseline_medoid", "best_of_3"):
            flat[key] = row[key]
        for name in COMPARISONS:
            flat.update({f"{name}_{part}": value for part, value in row[name].items()})
        out.append(flat)
    return out


def figure(reader, where, verdict) -> Drawn:
    """Per setting, the COMPARISONS' paired differences on the verdict with their 95% CIs."""
    answer = report(reader, where, verdict)
    table = answer["tables"]["solved"]
    if not table:
        raise Unsupported("no ensemble unit whose seeds all have a baseline run")

    def plot(plt):
        fig, ax = plt.subplots(figsize=(8, 3.6))
        for k, (key, (_, _, label)) in enumerate(COMPARISONS.items()):
            x = np.arange(len(table)) + (k - 1.5) * 0.2
            diffs = [row[key]["diff"] for row in table]
            errors = np.array([[d - (row[key]["ci_low"] if row[key]["ci_low"] is not None else d),
                                (row[key]["ci_high"] if row[key]["ci_high"] is not None else d) - d]
                               for row, d in zip(table, diffs)]).T  # (2, settings)
            ax.errorbar(x, diffs, yerr=errors, fmt="o", capsize=3, label=label)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(table)), [f"{r['merge']}\nsteps {r['steps'][0]}-{r['steps'][-1]}" for r in table],
                      fontsize=8)
        ax.set(ylabel=f"difference ({verdict.name})",
               title=f"ensemble on {table[0]['units']} task x seed units, paired 95% CIs")
        ax.legend(fontsize=8)
        return fig

    rates = [{"method": m, "rate": v} for m, v in answer["solved_by_method"].items()]
    return Drawn("ensemble", "Ensemble vs baseline, best-of-N and the medoid control", verdict.label,
                 {"": _flat(table, f"right ({verdict.name})") + _flat(answer["tables"]["score"], "score"),
                  "by_method": rates},
                 f"{table[0]['units']} units, {answer['runs']} judged runs", plot,
                 notes=["\n".join([markdown(table, verdict.name), "", markdown(answer["tables"]["score"], "score")])])
