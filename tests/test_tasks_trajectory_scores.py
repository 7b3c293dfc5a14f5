"""Scoring a whole trajectory: final video plus each decoded x̂0 step, and the step the answer locks in."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from cos_ray.media import read_video
from cos_ray.tasks.bench import read_bench
from cos_ray.tasks.generation import generate_tasks
from cos_ray.tasks.score import references
from cos_ray.tasks.trajectory_scores import score_trajectory


def test_trajectory_scores_lock_in_where_the_answer_appears(tmp_path):
    generate_tasks("maze", 1, 5, tmp_path)
    (task,) = read_bench(tmp_path)
    refs = references(task)
    truth = read_video(task.ground_truth_path)  # (frames, H, W, 3)
    still = np.repeat(truth[:1], len(truth), axis=0)
    solved = np.repeat(truth[-1:], len(truth), axis=0)
    # steps 0, 3: still; step 6: solved; step 8: still again (a flip); step 9: solved
    filmstrip = np.stack([still, still, solved, still, solved])
    member = SimpleNamespace(video=solved, filmstrip=filmstrip, filmstrip_steps=[0, 3, 6, 8, 9])
    scores = score_trajectory(member, refs)
    assert scores["score"] > 0.9 and 0 < scores["score_overall"] <= 1
    assert scores["step_scores"][6][0] > 0.9 and scores["step_scores"][0][0] < 0.5
    assert scores["first_stable_step"] == 9 and scores["flips"] == 3

    plain = score_trajectory(SimpleNamespace(video=still, filmstrip=None, filmstrip_steps=[]), refs)
    assert plain["score"] < 0.5 and plain["step_scores"] == {} and plain["first_stable_step"] is None
