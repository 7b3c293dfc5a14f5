"""The search frontier: answers right against the transformer forward passes spent on them - the baseline, best-of-N
(every candidate run to the end, then picked) and Chain-of-Steps-guided search (`cos_ray.probes.search`: candidates
judged at an early step, the best continued) - with paired 95% CIs (`cos-ray figures --only search-frontier`).

The unit of pairing is a search unit: task T, candidates S..S+N-1. Against it, over the baseline runs of T at those
seeds (every one must be there and judged):
- `baseline`: their mean (one trajectory's passes);
- `best-of-N (task)`: the baseline with the highest final task score (the task verifier at the end: an oracle, it
  reads the answer; of several tied, their mean solved: what a pick at random among them expects), N trajectories'
  passes;
- `best-of-N (consensus)`: the baseline video nearest the N videos' mean (pixels; no task knowledge), N trajectories;
- `ensemble`: the paper's training-free ensemble over the same task and seeds, where the sweeps hold one setting of
  it (its consensus member, the `layers` row of kind `consensus`), at its members' passes;
- the search's answer: its kept candidate (of several kept: the verifier's pick of their final x̂0; the `layers` row
  of kind `consensus`), at the passes its runs recorded (`runs.forward_passes`, pruned candidates included).
Rates carry Wilson intervals (the baseline's per-unit mean over N seeds: the bounded interval of a mean); differences (search − baseline, search − best-of-N of its verifier's kind) are paired
per unit with Student-t intervals (`cos_ray.figures.intervals`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cos_ray.figures.figure import Drawn, Unsupported
from cos_ray.figures.intervals import paired_difference

FRONTIER_SQL = """SELECT r.run_id, r.unit_id, r.task_id, r.seed, r.seeds, r.method, r.params, r.score, r.video,
  r.status, r.forward_passes, c.run_id IS NOT NULL AS answer
FROM runs r LEFT JOIN (SELECT DISTINCT run_id FROM layers WHERE kind = 'consensus') c USING (run_id)
WHERE {clause} AND r.status IN ('ok', 'pruned') AND r.method IN ('baseline', 'ensemble', 'search') ORDER BY r.run_id"""


def judged_rows(reader, where, verdict) -> list[dict]:
    """The filtered baseline and search runs; finished ones carry `solved` (None where the verdict cannot judge),
    baselines their video's `frames` (the consensus pick at the end needs them)."""
    from cos_ray.media import read_video

    if "forward_passes" not in reader.columns("runs"):
        raise Unsupported("the runs table has no forward_passes (a store written before the search method)")
    clause, values = where.where("r")
    runs = reader.rows(FRONTIER_SQL.format(clause=clause), values)
    finished = [r for r in runs if r["status"] == "ok"]
    right = verdict.final(finished)
    for run in runs:
        run["solved"] = right.get(run["run_id"])
        if run["method"] == "baseline" and run["video"]:
            run["frames"] = read_video(Path(reader.uri) / run["video"])  # (frames, H, W, 3)
    return runs


def medoid(videos) -> int:
    """Index of the video nearest (L2, pixels) the videos' mean."""
    stack = np.stack(videos).astype(np.float32)  # (n, frames, H, W, 3)
    mean = stack.mean(axis=0)
    return int(np.argmin([np.linalg.norm(video - mean) for video in stack]))


def _rate(values) -> dict:
    """The mean of per-unit values in [0, 1] with its 95% interval: Wilson where each is 0 or 1 (one answer per
    unit), else the bounded interval of a mean (the baseline's per-unit mean over N seeds)."""
    from cos_ray.figures.intervals import bounded_interval, wilson

    values = np.asarray(values, dtype=float)
    if np.all(np.isin(values, (0.0, 1.0))):
        low, high = wilson(int(round(values.sum())), len(values))
    else:
        low, high = bounded_interval(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None,
                                     len(values))
    return {"solved": float(values.mean()), "ci_low": low, "ci_high": high}


def search_units(rows: list[dict]) -> list[dict]:
    """One entry per search unit whose candidates all have a judged baseline: the search's answer and passes and its
    references (see the module docstring), each a number per unit."""
    baselines = {(r["task_id"], r["seed"]): r for r in rows
                 if r["method"] == "baseline" and r["status"] == "ok" and r["solved"] is not None}
    units: dict = {}
    ensembles: dict = {}

    def over(members) -> tuple:  # a unit's task and seeds: what pairs a search with the ensemble of the same seeds
        return members[0]["task_id"], tuple(sorted(members[0]["seeds"]))

    for r in rows:
        if r["method"] in ("search", "ensemble"):
            units.setdefault(r["unit_id"], []).append(r)
    for members in units.values():
        answers = [m for m in members if m["answer"] and m["solved"] is not None]
        if members[0]["method"] == "ensemble" and answers and all(m["forward_passes"] is not None for m in members):
            key = over(members)
            seen = ensembles.setdefault(key, (members[0]["params"], float(answers[0]["solved"]),
                                              sum(m["forward_passes"] for m in members)))
            if seen[0] != members[0]["params"]:  # two ensemble settings over these seeds: neither is the reference
                ensembles[key] = (None, np.nan, np.nan)
    out = []
    for unit_id, members in units.items():
        if members[0]["method"] != "search":
            continue
        answers = [m for m in members if m["answer"] and m["solved"] is not None]
        bases = [baselines.get((members[0]["task_id"], seed)) for seed in sorted(members[0]["seeds"])]
        if not answers or None in bases or any(m["forward_passes"] is None for m in members + bases):
            continue
        params = json.loads(members[0]["params"])
        final = [b["score"] if b["score"] is not None else -1.0 for b in bases]
        tied = [b for b, score in zip(bases, final) if score == max(final)]  # counted at their mean: a fair pick
        typical = medoid([b["frames"] for b in bases]) if all("frames" in b for b in bases) else None
        out.append({
            "unit_id": unit_id, "task_id": members[0]["task_id"], "params": params,
            "search": float(answers[0]["solved"]), "search_passes": sum(m["forward_passes"] for m in members),
            "baseline": float(np.mean([b["solved"] for b in bases])),
            "baseline_passes": float(np.mean([b["forward_passes"] for b in bases])),
            "best_of_n_task": float(np.mean([b["solved"] for b in tied])),
            "best_of_n_consensus": np.nan if typical is None else float(bases[typical]["solved"]),
            "best_of_n_passes": sum(b["forward_passes"] for b in bases),
            **dict(zip(("ensemble", "ensemble_passes"), ensembles.get(over(members), (None, np.nan, np.nan))[1:])),
        })
    return out


def setting_label(params: dict) -> str:
    return (f"search {params['verifier']}, N={params['candidates']}, select at {params['select_at']}, "
            f"keep {params['keep']}")


def frontier_table(rows: list[dict]) -> list[dict]:
    """The CSV: per search setting, its references over the same units and the search, each a row with its rate,
    Wilson CI and passes per task; the search's rows add the paired differences against the baseline and against
    best-of-N of its verifier's kind (`task` and `evalkit` against the task pick, `consensus` against the medoid)."""
    by_setting: dict = {}
    for unit in search_units(rows):
        by_setting.setdefault(json.dumps(unit["params"], sort_keys=True), []).append(unit)
    table = []
    for key, units in sorted(by_setting.items()):
        params = json.loads(key)
        column = {name: np.array([u[name] for u in units], dtype=float) for name in units[0]
                  if name not in ("unit_id", "task_id", "params")}
        common = {"setting": setting_label(params), "verifier": params["verifier"], "candidates": params["candidates"],
                  "select_at": params["select_at"], "keep": params["keep"], "units": len(units)}
        versus = "best_of_n_consensus" if params["verifier"] == "consensus" else "best_of_n_task"
        for method, passes in (("baseline", "baseline_passes"), ("best_of_n_task", "best_of_n_passes"),
                               ("best_of_n_consensus", "best_of_n_passes"), ("ensemble", "ensemble_passes"),
                               ("search", "search_passes")):
            values = column[method]
            if np.isnan(values).any():
                continue
            row = {**common, "method": method, **_rate(values), "passes_per_task": float(column[passes].mean())}
            if method == "search":
                for name, reference in (("vs_baseline", "baseline"), ("vs_best_of_n", versus)):
                    if not np.isnan(column[reference]).any():
                        paired = paired_difference(values - column[reference])
                        row.update({f"{name}_{part}": value for part, value in paired.items()})
                row["passes_vs_best_of_n"] = float(column["search_passes"].sum() / column["best_of_n_passes"].sum())
            table.append(row)
    return table


def markdown(table: list[dict]) -> str:
    lines = ["| setting | method | units | solved [95% CI] | passes / task | − baseline [95% CI] "
             "| − best-of-N [95% CI] |", "|" + "---|" * 7]

    def ci(row, prefix):
        if row.get(f"{prefix}_diff") is None:
            return ""
        low, high = row.get(f"{prefix}_ci_low"), row.get(f"{prefix}_ci_high")
        return f"{row[f'{prefix}_diff']:+.3f}" + (f" [{low:+.3f}, {high:+.3f}]" if low is not None else "")

    for row in table:
        rate = f"{row['solved']:.3f}" + (f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" if row["ci_low"] is not None
                                         else "")
        lines.append(f"| {row['setting']} | {row['method']} | {row['units']} | {rate} | {row['passes_per_task']:.1f} "
                     f"| {ci(row, 'vs_baseline')} | {ci(row, 'vs_best_of_n')} |")
    return "\n".join(lines)


MARKERS = {"baseline": "s", "best_of_n_task": "^", "best_of_n_consensus": "v", "ensemble": "D", "search": "o"}


def figure(reader, where, verdict) -> Drawn:
    """Solved fraction (Wilson 95% CIs) against forward passes per task, one point per method and search setting."""
    table = frontier_table(judged_rows(reader, where, verdict))
    if not table:
        raise Unsupported("no search unit whose candidates all have a judged baseline run with forward_passes")

    def plot(plt):
        fig, ax = plt.subplots(figsize=(10, 4.6))
        seen = set()
        for row in table:
            key = (row["method"], row["candidates"]) if row["method"] != "search" else (row["setting"],)
            if key in seen:
                continue  # the references of settings over the same units coincide
            seen.add(key)
            low, high = row["ci_low"], row["ci_high"]
            error = None if low is None else [[row["solved"] - low], [high - row["solved"]]]
            label = row["setting"] if row["method"] == "search" else f"{row['method']} (N={row['candidates']})"
            ax.errorbar(row["passes_per_task"], row["solved"], yerr=error, fmt=MARKERS[row["method"]], capsize=3,
                        label=label, color=plt.cm.tab20(len(seen) % 20))  # 17 points on the tiny job: 20 colours
        ax.set(xlabel="transformer forward passes per task", ylabel=f"answers right ({verdict.name})", ylim=(0, 1),
               xlim=(0, None), title=f"search frontier, {table[0]['units']} tasks x candidates per setting, 95% CIs")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the points fill the axes
        fig.subplots_adjust(left=0.07, right=0.68, bottom=0.12)  # room for the legend on the right
        return fig

    units = max(row["units"] for row in table)
    return Drawn("search-frontier", "Chain-of-Steps-guided search vs best-of-N at the forward passes each used",
                 verdict.label, {"": table}, f"{units} search units per setting", plot, notes=[markdown(table)])
