"""Generated mazes scored by VBVR-EvalKit's own maze evaluator: the export names them as EvalKit's registry does
(`O-39_maze_data-generator`) and writes the ground-truth folders EvalKit pairs videos with; EvalKit itself is the
reference that the ground-truth video passes and the first frame held fails. The EvalKit tests skip without it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from cos_ray.errors import UsageError
from cos_ray.media import read_video, write_video
from cos_ray.sweep.evalkit_agreement import cohen_kappa
from cos_ray.sweep.export import sample_folders
from cos_ray.tasks.export import export_evalkit, export_ground_truth
from cos_ray.tasks.families import get_family
from cos_ray.tasks.generation import family_params
from cos_ray.tasks.vbvr_ids import BUILTIN_SCORERS, EVALKIT_TASKS, evalkit_task, scorer_family, task_id_of

MAZE = "O-39_maze_data-generator"
PARAMS = {"cells": 4, "size": 64, "frames": 9}


def _generated_row(tmp_path, n=3, seed=1, family="maze", params=PARAMS) -> tuple[dict, list[dict]]:
    """A sweeps row and its runs as the store holds them for `tasks: {generate: ...}` (what sample_folders reads)."""
    spec = {"tasks": {"generate": {"family": family, "n": n, "seed": seed, "params": params}}}
    row = {"sweep_id": "s", "spec": json.dumps(spec), "source": str(tmp_path / "job.yaml")}
    runs = [{"task_id": f"In-Domain_50/{family}/{i:05d}"} for i in range(n)]
    return row, runs


def test_a_generated_family_maps_to_evalkits_task_and_back():
    assert evalkit_task("maze") == MAZE == EVALKIT_TASKS["maze"]
    assert evalkit_task("G-131_select_next_figure_data-generator") == "G-131_select_next_figure_data-generator"
    assert scorer_family(MAZE) == "maze" and BUILTIN_SCORERS == {"O-39": "maze"} and task_id_of(MAZE) == "O-39"


@pytest.mark.parametrize("task", ["grid_path", "pattern", "my_task"])
def test_a_family_evalkit_cannot_score_is_refused(task):
    with pytest.raises(UsageError, match=f"'{task}': VBVR-EvalKit has no evaluator") as err:
        evalkit_task(task)
    assert err.value.exit_code == 2 and "maze -> O-39_maze_data-generator" in str(err.value)


def test_the_export_writes_each_samples_ground_truth_under_evalkits_name(tmp_path):
    row, runs = _generated_row(tmp_path)
    folders = sample_folders(row, runs)
    gt = export_ground_truth([("In-Domain_50", evalkit_task("maze"), i, folders[r["task_id"]])
                              for i, r in enumerate(runs)], tmp_path / "out")
    assert gt == tmp_path / "out" / "gt"
    assert sorted(p.relative_to(gt).as_posix() for p in gt.rglob("*") if p.is_file()) == [
        f"In-Domain_50/{MAZE}/{i:05d}/{name}" for i in range(3)
        for name in ("final_frame.png", "first_frame.png", "ground_truth.mp4", "prompt.txt")]
    family = get_family("maze")
    for i in range(3):  # the reference: the generator itself, drawn again from (seed, i)
        sample = family.generate(np.random.default_rng([1, i]), family_params("maze", **PARAMS))
        folder = gt / "In-Domain_50" / MAZE / f"{i:05d}"
        assert np.array_equal(np.asarray(Image.open(folder / "first_frame.png").convert("RGB")), sample.frames[0])
        assert np.array_equal(np.asarray(Image.open(folder / "final_frame.png").convert("RGB")), sample.frames[-1])
        assert (folder / "prompt.txt").read_text().strip() == sample.prompt
        assert read_video(folder / "ground_truth.mp4").shape == sample.frames.shape  # (9, 64, 64, 3)
    with pytest.raises(UsageError, match="already exists"):
        export_ground_truth([("In-Domain_50", MAZE, 0, folders[runs[0]["task_id"]])], tmp_path / "out")


def test_bad_ground_truth_entries_are_refused_before_writing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="has no first_frame.png"):
        export_ground_truth([("In-Domain_50", MAZE, 0, tmp_path / "empty")], tmp_path / "out")
    with pytest.raises(UsageError, match="'gt': the name of the ground-truth folder"):
        export_evalkit([("gt", 0, "In-Domain_50", MAZE, 0, __file__)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cohens_kappa_matches_a_worked_example():
    # Cohen (1960) as in every textbook: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po 0.70, pe 0.50, kappa 0.40
    table = {(True, True): 20, (True, False): 5, (False, True): 10, (False, False): 15}
    assert cohen_kappa(table) == pytest.approx(0.4)
    assert cohen_kappa({(True, True): 7, (False, False): 3}) == pytest.approx(1.0)
    assert cohen_kappa({(False, False): 100}) is None  # both raters constant: kappa undefined


def _evalkit():
    return pytest.importorskip("vbvr_bench", reason="VBVR-EvalKit is installed by hand (not in CI)")


def test_evalkit_passes_the_ground_truth_and_fails_the_first_frame_held(tmp_path):
    vbvr_bench = _evalkit()
    row, runs = _generated_row(tmp_path)
    folders = sample_folders(row, runs)
    out = tmp_path / "export"
    export_ground_truth([("In-Domain_50", MAZE, i, folders[r["task_id"]]) for i, r in enumerate(runs)], out)
    entries = []
    for i, run in enumerate(runs):
        folder = folders[run["task_id"]]
        first = np.asarray(Image.open(folder / "first_frame.png").convert("RGB"))
        held = write_video(tmp_path / f"held-{i}.mp4", np.repeat(first[None], 9, axis=0), fps=8)  # (9, 64, 64, 3)
        entries += [("ground_truth", 0, "In-Domain_50", MAZE, i, folder / "ground_truth.mp4"),
                    ("first_frame", 0, "In-Domain_50", MAZE, i, held)]
    export_evalkit(entries, out)
    bench = vbvr_bench.VBVRBench(gt_base_path=str(out / "gt"), output_path=str(tmp_path / "results"), device="cpu")
    verdicts = {}
    for method in ("ground_truth", "first_frame"):
        results = bench.evaluate(str(out / method / "seed-0"), name=method)
        assert [d["task_name"] for d in results["detailed"]] == [MAZE] * 3
        assert not [d for d in results["detailed"] if d.get("error")]
        verdicts[method] = [d["dimensions"]["task_specific"] for d in results["detailed"]]
    assert verdicts["ground_truth"] == [1.0, 1.0, 1.0]  # EvalKit's maze score at its top: every rule met
    assert all(score < 0.9 for score in verdicts["first_frame"])  # no path drawn


def test_score_evalkit_scores_a_generated_sweep_with_the_maze_evaluator(small_sweep, tmp_path):
    _evalkit()
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.score import score_sweep

    store = tmp_path / "results"
    shutil.copytree(small_sweep[1], store)  # the session's sweep is read only
    report = score_sweep(Store(store), "small", task_specific_only=True)
    rows = run_sql(Store(store), "select r.task_id, e.task, e.score_task_specific, e.error from runs r "
                                 "join evalkit e using (run_id)").to_pylist()
    assert report.rows == len(rows) == len(run_sql(Store(store), "select run_id from runs").to_pylist())
    assert {r["task"] for r in rows} == {MAZE} and not [r for r in rows if r["error"]]
    assert all(0.0 <= r["score_task_specific"] <= 1.0 for r in rows)


GRID_SWEEP = """\
name: grid
model: {name: tiny, workers: 1}
tasks: {generate: {family: grid_path, n: 1, seed: 0}}
seeds: [0]
methods: [first_frame]
"""


def test_export_and_score_refuse_a_family_evalkit_has_no_evaluator_for(ray_cluster, tmp_path):
    from click.testing import CliRunner

    from cos_ray.cli import main
    from cos_ray.sweep.runner import run_sweep

    (tmp_path / "grid.yaml").write_text(GRID_SWEEP)
    assert run_sweep(str(tmp_path / "grid.yaml"), str(tmp_path / "results"), progress=False).status == "done"
    for command in (["export", "grid", "--evalkit", str(tmp_path / "out")], ["score", "grid", "--evalkit"]):
        result = CliRunner().invoke(main, [*command, "--out", str(tmp_path / "results")])
        assert result.exit_code == 2, result.output
        assert "'grid_path': VBVR-EvalKit has no evaluator" in result.output or "not installed" in result.output
    assert not (tmp_path / "out").exists()
