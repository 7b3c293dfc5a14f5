"""`cos-ray figures` on a sweep over a VBVR-Bench-layout tree (official task folder name, no generator spec): the
verdict is the task score (no maze route reader: the sweep did not generate its tasks), the figures its rows
support are drawn - the frames x steps grid recounted with numpy from the raw rows - and the rest are named."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from test_figures_probes import cli, raw, read_csv, wilson

TASK = "O-39_maze_data-generator"
SWEEP = """\
name: bench-grid
model: {name: tiny, workers: 1, groups: 2}
tasks: ROOT
seeds: [0]
sampler:
  steps: {grid: [2, 3]}
  frames: {grid: [5, 9]}
methods:
  - baseline
"""


@pytest.fixture(scope="module")
def drawn(ray_cluster, tmp_path_factory):
    from cos_ray.sweep.runner import run_sweep
    from cos_ray.tasks.generation import generate_tasks

    folder = tmp_path_factory.mktemp("bench")
    generate_tasks("maze", 2, 0, folder / "bench", split="In-Domain_50", task=TASK, size=64, frames=5, cells=4)
    (folder / "grid.yaml").write_text(SWEEP.replace("ROOT", str(folder / "bench")))
    report = run_sweep(str(folder / "grid.yaml"), str(folder / "results"), progress=False)
    assert report.status == "done", report
    code, out, err = cli("figures", "bench-grid", "--to", str(folder / "figures"), "--out", str(folder / "results"))
    assert code == 0, out + err
    return str(folder / "results"), folder / "figures"


def test_the_bench_tree_is_judged_by_its_score_and_unsupported_figures_are_named(drawn):
    store, figures = drawn
    assert {r["task_id"].split("/")[1] for r in raw(store, "select task_id from runs")} == {TASK}
    index = (figures / "index.md").read_text()
    assert "Verdict: **score** - task score >= 0.9" in index
    for name, why in (("fig3b", "no noise_at_step"), ("fig3c", "no CKA rows"), ("fig5", "no energy rows"),
                      ("fig6", "no swap runs"), ("ensemble", "no ensemble unit"), ("chain-of-steps", "no steps")):
        assert f"- {name}: {why}" in index, name
    assert (figures / "frames-steps.png").is_file() and (figures / "compare.svg").is_file()


def test_the_frames_steps_csv_recounts(drawn):
    import json

    store, figures = drawn
    cells = defaultdict(list)
    for r in raw(store, "select settings, score from runs where status = 'ok' and score is not null"):
        settings = json.loads(r["settings"])
        cells[(settings["frames"], settings["steps"])].append(r["score"])
    table = read_csv(figures / "frames-steps.csv")
    assert {(int(r["frames"]), int(r["steps"])) for r in table} == set(cells) == {(5, 2), (5, 3), (9, 2), (9, 3)}
    for row in table:
        scores = np.array(cells[(int(row["frames"]), int(row["steps"]))])
        k = int((scores >= 0.9).sum())
        assert (row["runs"], row["right"]) == (len(scores), k)
        assert row["mean"] == pytest.approx(scores.mean(), abs=1e-5)
        assert (row["share_ci_low"], row["share_ci_high"]) == pytest.approx(wilson(k, len(scores)), abs=1e-5)


def test_the_distillation_csv_recounts(drawn):
    """The sweep's two step budgets are two settings of the distillation figure: answers right and x̂0's distance to
    the run's own final latent per step, recounted with numpy from the raw rows (no candidates: no route reader)."""
    import json

    store, figures = drawn
    runs = raw(store, "select run_id, settings, score from runs where status = 'ok' and score is not null")
    steps_of = {r["run_id"]: json.loads(r["settings"])["steps"] for r in runs}
    table = {int(r["steps"]): r for r in read_csv(figures / "distillation.csv")}
    assert set(table) == set(steps_of.values()) == {2, 3}
    for n_steps, row in table.items():
        scores = np.array([r["score"] for r in runs if steps_of[r["run_id"]] == n_steps])
        assert (row["runs"], row["right"]) == (len(scores), int((scores >= 0.9).sum()))
    distances = defaultdict(list)
    for s in raw(store, "select run_id, step, x0_to_final from steps"):
        if s["run_id"] in steps_of:
            distances[(steps_of[s["run_id"]], s["step"])].append(s["x0_to_final"])
    per_step = read_csv(figures / "distillation.per_step.csv")
    assert {(int(r["steps"]), int(r["step"])) for r in per_step} == set(distances)
    for r in per_step:
        kept = [d for d in distances[(int(r["steps"]), int(r["step"]))] if d is not None]
        assert r["x0_to_final"] == (pytest.approx(np.mean(kept), abs=1e-6) if kept else None)
        assert r["candidates"] is None
