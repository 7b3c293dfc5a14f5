"""Trivial baselines as sweep methods: no model time, scored by the same scorers as model runs."""

from __future__ import annotations

import pytest

from cos_ray.store.location import Store
from cos_ray.store.query import run_sql

SPEC = """\
name: trivial
model: tiny
tasks: {generate: {family: FAMILY, n: 2, seed: 3}}
seeds: [0]
methods: [first_frame, ground_truth]
"""


@pytest.mark.parametrize("family", ["maze", "grid_path", "pattern"])
def test_ground_truth_tops_the_scale_and_the_first_frame_scores_low(family, tmp_path):
    import numpy as np

    from cos_ray.media import read_video
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.sweep.runner import run_sweep
    from cos_ray.tasks.score import references, score_video

    spec = tmp_path / "trivial.yaml"
    spec.write_text(SPEC.replace("FAMILY", family))
    report = run_sweep(str(spec), str(tmp_path / "results"), progress=False)

    assert (report.done, report.failed) == (4, 0)
    rows = run_sql(Store(tmp_path / "results"), "select * from runs order by task_id, method").to_pylist()
    assert {row["device"] for row in rows} == {"none"} and {row["dtype"] for row in rows} == {None}
    units = {unit.unit_id: unit for unit in expand(load_spec(spec))}
    for row in rows:
        task = units[row["unit_id"]].task.load()
        if row["method"] == "ground_truth":
            assert row["score"] >= 0.9
            expected = score_video(read_video(task.ground_truth_path).astype(np.float32) / 255.0, references(task))
        else:
            assert row["score"] < 0.5
            assert row["score_overall"] > row["score"]  # the weighted score flatters doing nothing
            first = np.asarray(read_video(tmp_path / "results" / row["video"]))[0]
            assert first.shape[:2] == references(task).first.shape[:2]
            expected = None
        if expected is not None:
            assert row["score"] == pytest.approx(expected.task_specific, abs=1e-9)
            assert row["score_overall"] == pytest.approx(expected.overall, abs=1e-9)


def test_ground_truth_without_a_reference_video_fails_with_the_reason(task_dir, tmp_path):
    from cos_ray.sweep.runner import run_sweep

    spec = tmp_path / "trivial.yaml"
    spec.write_text(f"model: tiny\ntasks: {task_dir}\nmethods: [first_frame, ground_truth]\n")
    report = run_sweep(str(spec), str(tmp_path / "results"), progress=False)

    assert (report.done, report.failed, report.status) == (1, 1, "failed")
    rows = run_sql(Store(tmp_path / "results"), "select method, status, score, error from runs order by 1").to_pylist()
    assert rows[0] == {"method": "first_frame", "status": "ok", "score": None, "error": None}  # no scorer: null
    assert rows[1]["status"] == "failed" and "no ground_truth.mp4" in rows[1]["error"]
