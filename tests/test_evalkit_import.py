"""EvalKit results matched to runs without a cluster: the path tails `cos-ray export` writes, renamed folders, both
kinds of EvalKit JSON (run_evaluation.py's task-specific `samples[]`, VBVRBench.evaluate's weighted `detailed[]`)."""

from __future__ import annotations

import json

import pytest

from cos_ray.errors import UsageError
from cos_ray.sweep.score import _scores, match_runs, read_results

TASK = "O-39_maze_data-generator"


def run(run_id, label, seed, idx, split="Out-of-Domain_50", task=TASK):
    return {"run_id": run_id, "unit_id": run_id[:-2], "label": label, "seed_folder": seed, "split": split,
            "task": task, "idx": idx}


RUNS = [run("a-0", "baseline", 1, "00000"), run("b-0", "baseline", 1, "00001"), run("c-0", "ensemble", 1, "00000"),
        run("d-0", "baseline", 4, "00001")]


def sample(path, score=0.5, **dims):
    return {"video_path": path, "task_name": TASK, "split": "Out_of_Domain", "score": score, "dimensions": dims}


def test_exported_paths_match_their_runs():
    samples = [sample(f"/elsewhere/out/ensemble/seed-1/Out-of-Domain_50/{TASK}/00000.mp4"),
               sample(f"/elsewhere/out/baseline/seed-4/Out-of-Domain_50/{TASK}/00001.mp4"),
               sample(f"C:\\\\ek\\\\baseline\\\\seed-1\\\\Out-of-Domain_50\\\\{TASK}\\\\00000.mp4")]
    matched, unmatched = match_runs(samples, RUNS)
    assert [r["run_id"] for _, r in matched] == ["c-0", "d-0", "a-0"] and unmatched == []


def test_renamed_folders_match_only_when_one_run_has_the_sample():
    samples = [sample(f"/m/Out-of-Domain_50/{TASK}/00000.mp4"),  # 00000: baseline and ensemble both have it
               sample(f"/m/Out-of-Domain_50/{TASK}/00009.mp4")]
    matched, unmatched = match_runs(samples, [run("a-0", "baseline", 1, "00000"), run("c-0", "ensemble", 1, "00000")])
    assert matched == [] and len(unmatched) == 2
    matched, _ = match_runs(samples[:1], [run("a-0", "baseline", 1, "00000")])
    assert [r["run_id"] for _, r in matched] == ["a-0"]


def test_score_kinds_follow_evalkit():
    # run_evaluation.py (task_specific_only): score = task-specific, dimensions = {task_specific}
    assert _scores(sample("x", 0.7, task_specific=0.7)) == (0.7, None)
    five = dict(first_frame_consistency=1, final_frame_accuracy=0.5, temporal_smoothness=1, visual_quality=0.2,
                task_specific=0.3)
    assert _scores(sample("x", 0.6, **five)) == (0.3, 0.6)  # evaluate.py: the weighted score and its dimensions


def test_both_json_kinds_read(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"model_name": "m", "summary": {}, "samples": [sample("v.mp4")]}))
    (tmp_path / "b.json").write_text(json.dumps({"overall": {}, "detailed": [sample("v.mp4")]}))
    assert read_results(tmp_path / "a.json") == read_results(tmp_path / "b.json") == [sample("v.mp4")]
    (tmp_path / "c.json").write_text(json.dumps({"samples": [{"video_path": "v.mp4", "task_name": TASK,
                                                              "score": True}]}))
    with pytest.raises(UsageError, match=r"samples\[0\]\.score: expected a number"):
        read_results(tmp_path / "c.json")
    with pytest.raises(UsageError, match="cannot read it"):
        read_results(tmp_path / "missing.json")
