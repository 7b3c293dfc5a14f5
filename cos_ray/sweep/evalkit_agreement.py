"""VBVR-EvalKit's verdicts beside cos-ray's on a generated maze sweep: pass rates, the 2x2 table, Cohen's kappa and
the correlation of the two task scores - so that a claim "it solves mazes" does not rest on cos-ray's scorer alone.

    python -m cos_ray.sweep.evalkit_agreement STORE [--sweep NAME] [--json]     (after `cos-ray score SWEEP --evalkit`)

cos-ray's verdicts per run: `score >= threshold` (runs.score, the family's threshold, 0.9) and `solved` - that AND the
drawn path is the ground-truth route (`cos_ray.figures.maze_route.stored_run_solved`: the video's last frame, against
each run's sample as `cos-ray export` writes it again). EvalKit's: its task-specific score, and "pass" - EvalKit
defines no pass threshold (its scores are continuous, its tables report means), so pass here is EvalKit's maze
score at its top, 1.0: every one of its four rules (no wall crossed, both markers reached, one connected path,
walls kept) met in full. `--pass` changes it.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

EVALKIT_PASS = 1.0


def cohen_kappa(table: dict) -> float | None:
    """Cohen's kappa of a 2x2 table {(a, b): count} of two raters' booleans; None when chance agreement is total."""
    n = sum(table.values())
    if n == 0:
        return None
    observed = (table.get((True, True), 0) + table.get((False, False), 0)) / n
    a_yes = (table.get((True, True), 0) + table.get((True, False), 0)) / n
    b_yes = (table.get((True, True), 0) + table.get((False, True), 0)) / n
    chance = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
    return None if chance >= 1 else (observed - chance) / (1 - chance)


def _correlations(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """(Pearson, Spearman) of two score lists; None where either list is constant."""
    import numpy as np
    from scipy.stats import rankdata

    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    pearson = float(np.corrcoef(x, y)[0, 1])
    spearman = float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])
    return pearson, spearman


def agreement_rows(store, sweep: str) -> list[dict]:
    """One row per finished run of `sweep` scored by EvalKit: method, cos-ray's score, passed, solved, EvalKit's."""
    from cos_ray.errors import UsageError
    from cos_ray.media import read_video
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.export import evalkit_runs, local_copy, sample_folders
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.folder import read_task_folder
    from cos_ray.figures.maze_route import stored_run_solved

    row, runs, _ = evalkit_runs(store, sweep)
    if not store.has_table("evalkit"):
        raise UsageError(f"{store.uri}: no evalkit table; run `cos-ray score {sweep} --evalkit --out {store.uri}`")
    ids = {run["run_id"] for run in runs}
    evalkit = {r["run_id"]: r["score_task_specific"] for r in run_sql(
        store, "select run_id, score_task_specific from evalkit").to_pylist() if r["run_id"] in ids}
    scores = {r["run_id"]: r["score"] for r in run_sql(store, "select run_id, score from runs").to_pylist()
              if r["run_id"] in ids}
    runs = [run for run in runs if evalkit.get(run["run_id"]) is not None]
    if not runs:
        raise UsageError(f"sweep {row['sweep_id']}: no run has an EvalKit score; run `cos-ray score {sweep} --evalkit`")
    folders = sample_folders(row, runs)
    out = []
    with tempfile.TemporaryDirectory(prefix="cos-ray-agreement-") as staging:
        for run in runs:
            task = read_task_folder(folders[run["task_id"]])
            meta = task.meta()
            if "route" not in meta:
                raise UsageError(f"run {run['run_id']}: its sample has no route in task.json (a generated maze "
                                 "sweep is needed for `solved`)")
            threshold = get_family(meta["family"]).threshold
            score = scores[run["run_id"]]
            passed = score is not None and score >= threshold
            last = read_video(local_copy(store, run["video"], Path(staging)))[-1]  # (H, W, 3) uint8
            out.append({"run_id": run["run_id"], "method": run["label"], "task_id": run["task_id"],
                        "score": score, "passed": bool(passed),
                        "solved": stored_run_solved(score, last, meta),
                        "evalkit": float(evalkit[run["run_id"]])})
    return out


def summarise(rows: list[dict], evalkit_pass: float = EVALKIT_PASS) -> dict:
    """{method (and "all"): n, means, pass rates, the 2x2 of solved vs EvalKit pass, agreement, kappa, r, rho}."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["method"], []).append(row)
    groups["all"] = rows
    out = {}
    for method, mine in groups.items():
        n = len(mine)
        table = {(s, e): 0 for s in (True, False) for e in (True, False)}
        for row in mine:
            table[(row["solved"], row["evalkit"] >= evalkit_pass)] += 1
        pearson, spearman = _correlations([r["score"] for r in mine], [r["evalkit"] for r in mine])
        out[method] = {
            "n": n, "evalkit_mean": sum(r["evalkit"] for r in mine) / n,
            "evalkit_pass": sum(r["evalkit"] >= evalkit_pass for r in mine) / n,
            "evalkit_ge_0.9": sum(r["evalkit"] >= 0.9 for r in mine) / n,
            "cosray_mean": sum(r["score"] for r in mine) / n,
            "cosray_passed": sum(r["passed"] for r in mine) / n, "cosray_solved": sum(r["solved"] for r in mine) / n,
            "table": {f"solved={s} evalkit_pass={e}": c for (s, e), c in table.items()},
            "agreement": (table[(True, True)] + table[(False, False)]) / n, "kappa": cohen_kappa(table),
            "pearson": pearson, "spearman": spearman,
        }
    return out


def markdown(summary: dict, evalkit_pass: float = EVALKIT_PASS) -> str:
    """The model card's table and, per method, the 2x2 of cos-ray solved vs EvalKit pass."""
    def num(value, digits=3):
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"

    lines = [f"| method | n | EvalKit mean task score | EvalKit pass (= {evalkit_pass:g}) | EvalKit >= 0.9 | "
             "cos-ray score >= 0.9 | cos-ray solved | agreement (solved vs EvalKit pass) | Cohen's kappa | "
             "Pearson r (scores) | Spearman rho |", "|" + "---|" * 11]
    for method, s in summary.items():
        lines.append(f"| {method} | {s['n']} | {num(s['evalkit_mean'])} | {num(s['evalkit_pass'], 2)} | "
                     f"{num(s['evalkit_ge_0.9'], 2)} | {num(s['cosray_passed'], 2)} | {num(s['cosray_solved'], 2)} | "
                     f"{num(s['agreement'], 2)} | {num(s['kappa'])} | {num(s['pearson'])} | {num(s['spearman'])} |")
    for method, s in summary.items():
        t = s["table"]
        lines += ["", f"{method}: cos-ray solved (rows) vs EvalKit pass (columns)", "",
                  "| | EvalKit pass | EvalKit fail |", "|---|---|---|",
                  f"| solved | {t['solved=True evalkit_pass=True']} | {t['solved=True evalkit_pass=False']} |",
                  f"| not solved | {t['solved=False evalkit_pass=True']} | {t['solved=False evalkit_pass=False']} |"]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the agreement table of a store's generated maze sweep (markdown, or --json)."""
    import argparse

    from cos_ray.errors import UsageError, run_reporting_errors
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql

    parser = argparse.ArgumentParser(prog="python -m cos_ray.sweep.evalkit_agreement", description=main.__doc__)
    parser.add_argument("store", help="results store holding the sweep and its evalkit table")
    parser.add_argument("--sweep", help="sweep id or name (default: the store's only sweep)")
    parser.add_argument("--pass", dest="evalkit_pass", type=float, default=EVALKIT_PASS,
                        help=f"EvalKit task score counted as a pass (default {EVALKIT_PASS:g}: all four maze rules)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)

    def body():
        store = Store(args.store)
        sweep = args.sweep
        if sweep is None:
            names = run_sql(store, "select sweep_id from sweeps").to_pylist() if store.has_table("sweeps") else []
            if len(names) != 1:
                raise UsageError(f"{args.store}: {len(names)} sweeps; name one with --sweep")
            sweep = names[0]["sweep_id"]
        summary = summarise(agreement_rows(store, sweep), args.evalkit_pass)
        print(json.dumps(summary, indent=2) if args.json else markdown(summary, args.evalkit_pass))

    return run_reporting_errors(body)


if __name__ == "__main__":
    raise SystemExit(main())
