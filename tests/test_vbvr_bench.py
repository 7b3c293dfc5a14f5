"""VBVR-Bench end to end: a sweep over a tree with official task folder names, where only O-39 has a built-in scorer.

The tree holds only the four VBVR files per sample (no task.json, no mask): `Out-of-Domain_50/O-39_maze_data-generator/
0000k/` made from generated mazes, and `In-Domain_50/G-131_select_next_figure_increasing_size_sequence_data-generator/
00000/` (no built-in scorer). The sweep must exit 0 with every run stored; `cos-ray export` lays every video out for
VBVR-EvalKit; `cos-ray score --evalkit-results` imports results JSON in EvalKit's documented format, joined to runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql

MAZE = "O-39_maze_data-generator"
OTHER = "G-131_select_next_figure_increasing_size_sequence_data-generator"


def _write_vbvr_sample(folder: Path, sample) -> None:
    """Only the four files VBVR-Bench ships."""
    from cos_ray.media import write_image, write_video

    folder.mkdir(parents=True)
    write_image(folder / "first_frame.png", sample.first_frame)
    write_image(folder / "final_frame.png", sample.final_frame)
    write_video(folder / "ground_truth.mp4", sample.frames, fps=16)
    (folder / "prompt.txt").write_text(sample.prompt + "\n", encoding="utf-8")


def make_bench(root: Path) -> Path:
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.generation import family_params

    maze, pattern = get_family("maze"), get_family("pattern")
    for index in range(2):
        sample = maze.generate(np.random.default_rng([5, index]), family_params("maze", cells=3, size=128))
        _write_vbvr_sample(root / "Out-of-Domain_50" / MAZE / f"{index:05d}", sample)
    sample = pattern.generate(np.random.default_rng([5, 9]), family_params("pattern", size=128))
    _write_vbvr_sample(root / "In-Domain_50" / OTHER / "00000", sample)
    return root


SPEC = """\
name: vbvr-bench-test
model: {name: tiny, workers: 1}
tasks: bench
seeds: [1]
sampler: {steps: 2, frames: 5}
methods: [baseline]
probes:
  x0: {every: 1, decode: true}
"""


@pytest.fixture(scope="module")
def bench_sweep(ray_cluster, tmp_path_factory):
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("vbvr-bench")
    make_bench(folder / "bench")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC)
    report = run_sweep(str(spec), str(folder / "results"), progress=False)
    return folder, report


def test_every_task_runs_and_is_stored(bench_sweep):
    folder, report = bench_sweep
    assert report.exit_code == 0 and report.status == "done" and report.failed == 0 and report.done == 3
    store = Store(folder / "results")
    runs = {r["task_id"]: r for r in run_sql(store, "select * from runs").to_pylist()}
    assert set(runs) == {f"Out-of-Domain_50/{MAZE}/00000", f"Out-of-Domain_50/{MAZE}/00001",
                         f"In-Domain_50/{OTHER}/00000"}
    for index in range(2):
        maze = runs[f"Out-of-Domain_50/{MAZE}/{index:05d}"]
        assert maze["status"] == "ok" and maze["task_family"] == "maze"
        assert maze["score"] is not None and maze["score_overall"] is not None and maze["score_reason"] is None
    other = runs[f"In-Domain_50/{OTHER}/00000"]
    assert other["status"] == "ok" and other["error"] is None
    assert other["score"] is None and other["score_overall"] is None and other["scores"] is None
    assert other["score_reason"] == f"no built-in scorer for {OTHER}: score with `cos-ray score --evalkit`"
    assert (folder / "results" / other["video"]).is_file() and (folder / "results" / other["filmstrip"]).is_file()
    steps = run_sql(store, f"select step, x0_mean, score from steps where run_id = '{other['run_id']}' "
                           "order by step").to_pylist()
    assert [s["step"] for s in steps] == [0, 1] and all(s["x0_mean"] is not None and s["score"] is None
                                                        for s in steps)


def test_the_maze_scorer_is_chosen_by_task_id(tmp_path):
    """O-39 -> maze through the table of task ids; G-18 (not cos-ray's grid_path conventions) and others: none."""
    from cos_ray.tasks.bench import read_bench
    from cos_ray.tasks.vbvr_ids import scorer_family

    make_bench(tmp_path)
    families = {s.task: s.family for s in read_bench(tmp_path)}
    assert families == {MAZE: "maze", OTHER: None}
    assert scorer_family("O-39_maze_variant") == "maze" and scorer_family("G-18_grid_shortest_path_data-generator") \
        is None and scorer_family("maze") == "maze" and scorer_family("O-390_x") is None


def _export(folder: Path, target: Path):
    result = CliRunner().invoke(main, ["export", "vbvr-bench-test", "--evalkit", str(target),
                                       "--out", str(folder / "results")])
    assert result.exit_code == 0, result.output
    return sorted(p for p in target.rglob("*.mp4") if p.relative_to(target).parts[0] != "gt")  # gt: ground truth


def test_export_lays_every_video_out_for_evalkit(bench_sweep, tmp_path):
    folder, _ = bench_sweep
    videos = _export(folder, tmp_path / "evalkit")
    assert [p.relative_to(tmp_path / "evalkit").as_posix() for p in videos] == [
        f"baseline/seed-1/In-Domain_50/{OTHER}/00000.mp4",
        f"baseline/seed-1/Out-of-Domain_50/{MAZE}/00000.mp4",
        f"baseline/seed-1/Out-of-Domain_50/{MAZE}/00001.mp4",
    ]


def _evalkit_json(videos: list[Path], weighted: bool) -> tuple[dict, dict]:
    """A results JSON in EvalKit's documented format (run_evaluation.py: samples[], task-specific score; or
    VBVRBench.evaluate: detailed[], weighted score with five dimensions), with scores the test chooses."""
    samples, expected = [], {}
    for index, video in enumerate(videos):
        task_id = "/".join([video.parent.parent.name, video.parent.name, video.stem])
        task_score = round(0.1 + 0.2 * index, 3)
        dims = {"task_specific": task_score}
        if weighted:
            dims.update(first_frame_consistency=0.9, final_frame_accuracy=0.5, temporal_smoothness=0.8,
                        visual_quality=0.4)
        score = round(sum(v for v in dims.values()) / len(dims), 4) if weighted else task_score
        split = "In_Domain" if video.parent.parent.name.startswith("In") else "Out_of_Domain"
        samples.append({"video_path": str(video), "video_file": video.name, "task_name": video.parent.name,
                        "split": split, "category": "Spatiality", "score": score, "dimensions": dims,
                        "error": None})
        expected[task_id] = (task_score, score if weighted else None)
    if weighted:
        return {"overall": {}, "detailed": samples}, expected
    return {"model_name": "cos-ray", "summary": {}, "samples": samples}, expected


def test_score_imports_evalkit_results_joined_to_runs(bench_sweep, tmp_path):
    folder, _ = bench_sweep
    videos = _export(folder, tmp_path / "evalkit")
    store_path = str(folder / "results")
    results, expected = _evalkit_json(videos, weighted=False)
    (tmp_path / "task.json").write_text(json.dumps(results))
    out = CliRunner().invoke(main, ["score", "vbvr-bench-test", "--evalkit-results", str(tmp_path / "task.json"),
                                    "--evalkit-version", "vbvr-bench 0.1.0", "--out", store_path])
    assert out.exit_code == 0, out.output
    assert "3 row(s) in table evalkit" in out.output
    sql = ("select r.task_id, r.score, r.score_reason, e.task, e.split, e.score_task_specific, e.score_weighted, "
           "e.evalkit_version from runs r join evalkit e using (run_id) order by r.task_id")
    joined = run_sql(Store(store_path), sql).to_pylist()
    assert {row["task_id"]: (row["score_task_specific"], row["score_weighted"]) for row in joined} == expected
    assert {row["split"] for row in joined} == {"In_Domain", "Out_of_Domain"}
    assert all(row["evalkit_version"] == "vbvr-bench 0.1.0" for row in joined)

    # the weighted results of the same videos fill score_weighted and keep the task-specific scores
    weighted, expected_weighted = _evalkit_json(videos, weighted=True)
    (tmp_path / "weighted.json").write_text(json.dumps(weighted))
    again = CliRunner().invoke(main, ["score", "vbvr-bench-test", "--evalkit-results", str(tmp_path / "weighted.json"),
                                      "--out", store_path])
    assert again.exit_code == 0, again.output
    joined = run_sql(Store(store_path), sql).to_pylist()
    assert {row["task_id"]: (row["score_task_specific"], row["score_weighted"]) for row in joined} == expected_weighted
    assert len(run_sql(Store(store_path), "select * from evalkit").to_pylist()) == 3


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ('{"samples": [{"video_path": "a.mp4", "task_name": "x"}]}', r"samples\[0\]\.score: expected a number"),
    ('{"results": []}', "expected EvalKit's results JSON"),
    ('{"samples": [{"video_path": "/x/In-Domain_50/T/00009.mp4", "task_name": "T", "score": 1}]}',
     "none of its 1 video"),
])
def test_bad_results_files_are_named(bench_sweep, tmp_path, content, message):
    folder, _ = bench_sweep
    (tmp_path / "bad.json").write_text(content)
    out = CliRunner().invoke(main, ["score", "vbvr-bench-test", "--evalkit-results", str(tmp_path / "bad.json"),
                                    "--out", str(folder / "results")])
    assert out.exit_code == 2 and "bad.json" in out.output
    import re

    assert re.search(message, out.output), out.output


def test_score_with_evalkit_equals_its_evaluate_py(bench_sweep, tmp_path):
    """Opt-in (EvalKit installed by hand): `cos-ray score --evalkit` stores what EvalKit's own evaluate.py reports."""
    pytest.importorskip("vbvr_bench")
    folder, _ = bench_sweep
    store_path = str(folder / "results")
    out = CliRunner().invoke(main, ["score", "vbvr-bench-test", "--evalkit", "--out", store_path])
    assert out.exit_code == 0, out.output
    videos = _export(folder, tmp_path / "evalkit")
    script = Path(__import__("vbvr_bench").__file__).parents[1] / "evaluate.py"
    if not script.is_file():
        pytest.skip("EvalKit's evaluate.py is not beside the installed package (installed from a wheel)")
    subprocess.run([sys.executable, str(script), "--videos_path", str(tmp_path / "evalkit/baseline/seed-1"),
                    "--gt_path", str(folder / "bench"), "--output_path", str(tmp_path / "ek"), "--name", "ref",
                    "--device", "cpu"], check=True, capture_output=True, timeout=600)
    reference = json.loads((tmp_path / "ek" / "ref_eval_results.json").read_text())["detailed"]
    by_path = {Path(d["video_path"]).relative_to(tmp_path / "evalkit/baseline/seed-1").as_posix(): d
               for d in reference}
    stored = run_sql(Store(store_path), "select r.task_id, e.score_weighted, e.score_task_specific from runs r "
                                        "join evalkit e using (run_id)").to_pylist()
    assert len(stored) == len(videos) == len(by_path)
    print(f"cos-ray score --evalkit: mean weighted {np.mean([r['score_weighted'] for r in stored]):.6f} over "
          f"{len(stored)} videos; EvalKit's evaluate.py: {np.mean([d['score'] for d in reference]):.6f}")
    for row in stored:
        ref = by_path[row["task_id"] + ".mp4"]
        assert row["score_weighted"] == pytest.approx(ref["score"], abs=1e-12)
        assert row["score_task_specific"] == pytest.approx(ref["dimensions"]["task_specific"], abs=1e-12)
