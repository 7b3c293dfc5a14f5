"""Distillation: does a few-step sampler (a distilled student, or the full model given fewer steps) keep the early
candidates the paper sees at the first denoising steps, or does it commit at once? One setting per (model, steps,
guidance) - e.g. tiny-reasoner at 10 and at 4 steps and tiny-reasoner-4step at 4: the final answers' share right
(the verdict, Wilson interval), and per step, against the step's noise level sigma (steps of different budgets meet
on one axis): x̂0's task score share >= 0.9, the candidate routes drawn in x̂0 (`steps.candidates`), whether the final
answer is among them, x̂0's distance to the run's own final latent (`x0_to_final`), the members' spread
(`x0_spread`, ensembles), and when runs commit (`runs.commit_step`, as a fraction of the run's steps).
Store: jobs/paper/distillation-tiny-reasoner*.yaml, jobs/paper/distillation*.yaml (columns: docs/probes.md)."""

from __future__ import annotations

from cos_ray.figures.figure import Drawn, Unsupported, pairs
from cos_ray.figures.intervals import wilson
from cos_ray.figures.run_filter import RunFilter

SETTING = """model, TRY_CAST(json_extract_string(settings, '$.steps') AS INTEGER) AS steps,
  TRY_CAST(json_extract_string(settings, '$.guidance') AS DOUBLE) AS guidance"""
RUNS_SQL = """SELECT run_id, method, task_id, score, video, commit_step, {setting}
FROM runs WHERE ({clause}) AND status = 'ok' AND score IS NOT NULL"""
STEPS_SQL = """SELECT {setting}, s.step, avg(s.sigma) AS sigma,
  count(s.score) FILTER (WHERE r.method = 'baseline') AS runs,
  avg((s.score >= 0.9)::INTEGER) FILTER (WHERE r.method = 'baseline') AS x0_right,
  avg(s.candidates) FILTER (WHERE r.method = 'baseline') AS candidates,
  avg(s.answer_in_candidates::INTEGER) FILTER (WHERE r.method = 'baseline') AS answer_held,
  avg(s.x0_to_final) FILTER (WHERE r.method = 'baseline') AS x0_to_final,
  avg(s.x0_spread) AS x0_spread, count(s.x0_spread) AS spread_rows
FROM steps s JOIN runs r USING (run_id)
WHERE ({clause}) AND r.status = 'ok' GROUP BY ALL ORDER BY 1, 2 DESC, 3, 4"""
PER_STEP = (("x0_right", "x̂0 task score >= 0.9 (share)"), ("candidates", "candidate routes in x̂0"),
            ("answer_held", "final answer among them (share)"), ("x0_to_final", "RMS(x̂0 - own final latent)"),
            ("x0_spread", "members' x̂0 spread (RMS)"))


def setting_name(row: dict) -> str:
    guidance = row["guidance"]
    cfg = "no CFG" if guidance == 1 else f"CFG {guidance:g}" if guidance is not None else "CFG ?"
    return f"{row['model']} · {row['steps']} steps · {cfg}"


def figure(reader, where: RunFilter, verdict) -> Drawn:
    clause, values = where.where()
    runs = reader.rows(RUNS_SQL.format(setting=SETTING, clause=clause), values)
    base = [r for r in runs if r["method"] == "baseline"] or runs
    ordered = sorted(base, key=lambda r: (-(r["steps"] or 0), -(r["guidance"] or 0), r["model"] or ""))
    settings = pairs(ordered, setting_name)  # the full sampler first, then fewer steps, then the distilled one
    if len(settings) < 2:
        raise Unsupported("one (model, steps, guidance) setting only: nothing to compare a few-step sampler with")
    r_clause, r_values = where.where("r")
    have = reader.columns("steps")  # none without a steps table; stores older than a column read it as NULL
    sql = STEPS_SQL
    for column in ("sigma", "score", "candidates", "answer_in_candidates", "x0_to_final", "x0_spread"):
        if column not in have:
            sql = sql.replace(f"s.{column}", "NULL::DOUBLE")
    per_step = reader.rows(sql.format(setting=SETTING.replace("model,", "r.model,").replace(
        "json_extract_string(settings", "json_extract_string(r.settings"), clause=r_clause), r_values) if have else []
    right = verdict.final(base)
    table = []
    for name, rows in settings.items():
        judged = [right[r["run_id"]] for r in rows if right[r["run_id"]] is not None]
        k, n = sum(judged), len(judged)
        low, high = wilson(k, n)
        steps = rows[0]["steps"]
        commits = [r["commit_step"] for r in rows if r["commit_step"] is not None]
        table.append({"setting": name, "model": rows[0]["model"], "steps": steps, "guidance": rows[0]["guidance"],
                      "runs": len(rows), "judged": n, "right": k, "share": k / n if n else None,
                      "share_ci_low": low, "share_ci_high": high, "committed": len(commits),
                      "mean_commit_step": sum(commits) / len(commits) if commits else None,
                      "mean_commit_fraction": (sum(c / max(steps - 1, 1) for c in commits) / len(commits)
                                               if commits and steps else None),
                      "commit_at_step_0": sum(c == 0 for c in commits) / len(commits) if commits else None})
    for row in per_step:
        row["setting"] = setting_name(row)

    def plot(plt):
        fig, grid = plt.subplots(2, 3, figsize=(11, 6.4))
        axes = list(grid.flat)
        names = [row["setting"] for row in table]
        bars = axes[0]
        for i, row in enumerate(table):
            share = row["share"] or 0.0
            bars.bar(i, share, color=f"C{i}", yerr=[[share - row["share_ci_low"]], [row["share_ci_high"] - share]],
                     capsize=3)
            commit = row["mean_commit_fraction"]
            bars.text(i, 0.02, f"{row['right']}/{row['judged']}" + (f"\ncommit {commit:.2f}" if commit is not None
                                                                    else ""), ha="center", fontsize=7, color="w")
        bars.set_xticks(range(len(names)), [n.replace(" · ", "\n") for n in names], fontsize=6)
        bars.set(ylim=(0, 1), title="final answer right", ylabel=verdict.name)
        for ax, (column, label) in zip(axes[1:], PER_STEP):
            for i, name in enumerate(names):
                points = [(r["sigma"], r[column]) for r in per_step if r["setting"] == name and r[column] is not None]
                if points:
                    ax.plot(*zip(*points), "o-", color=f"C{i}", ms=3, label=name)
            ax.set(title=label, xlabel="σ at the step (noise → answer)", xlim=(1.02, -0.02))
            if "share" in label:
                ax.set_ylim(-0.02, 1.02)
            else:
                ax.set_ylim(bottom=0)  # counts and distances from 0: a flat curve looks flat
            ax.title.set_fontsize(9)
        axes[1].legend(fontsize=6)
        fig.tight_layout()
        return fig

    notes = ["per-step curves read the baseline runs; x0_spread the ensembles' members (merge as the spec wrote it)",
             "commit step: first decoded step from which the run's candidate routes stay its final ones"]
    return Drawn("distillation", "Distillation: few-step sampling and the early candidates", verdict.label,
                 {"": table, "per_step": per_step}, f"{len(base)} scored runs in {len(table)} settings", plot,
                 notes=notes)
