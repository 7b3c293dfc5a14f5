"""The ensemble table (`cos_ray.figures.ensemble`): pairing by unit, best-of-3 and the CIs, against a hand count and
scipy."""

import json

import numpy as np
import pytest
from scipy import stats

from cos_ray.figures.ensemble import ensemble_table

PARAMS = json.dumps({"layers": list(range(20, 30)), "merge": "update", "size": 3, "steps": [0, 1]})


def _run(method, task, seed, solved, unit=None, consensus=False, score=0.5):
    return {"method": method, "task_id": task, "seed": seed, "solved": solved, "score": score, "unit_id": unit,
            "params": PARAMS if method == "ensemble" else "{}", "consensus": consensus}


def _rows(baselines: dict, units: list[tuple]) -> list[dict]:
    """baselines: (task, seed) -> solved; units: (task, start seed, members' solved, consensus member index)."""
    rows = [_run("baseline", task, seed, solved) for (task, seed), solved in baselines.items()]
    for number, (task, start, members, chosen) in enumerate(units):
        rows += [_run("ensemble", task, start + k, solved, unit=f"u{number}", consensus=k == chosen)
                 for k, solved in enumerate(members)]
    return rows


def test_units_are_paired_with_the_baselines_of_their_own_seeds():
    baselines = {("a", 0): 1, ("a", 1): 0, ("a", 2): 0, ("a", 3): 0, ("b", 0): 0, ("b", 1): 0, ("b", 2): 0, ("b", 3): 1}
    units = [("a", 0, [1, 1, 0], 2), ("a", 1, [0, 0, 1], 2), ("b", 1, [1, 1, 1], 0),
             ("b", 2, [0, 0, 0], 0)]  # seeds 2-4: seed 4 has no baseline -> left out
    pixel = {("a", 0): 0, ("a", 1): 10, ("a", 2): 20, ("a", 3): 100, ("b", 0): 0, ("b", 1): 0, ("b", 2): 100,
             ("b", 3): 55}  # each baseline's video: one grey level
    rows = _rows(baselines, units)
    for r in rows:
        if r["method"] == "baseline":
            r["frames"] = np.full((2, 4, 4, 3), pixel[(r["task_id"], r["seed"])], dtype=np.uint8)
    (row,) = ensemble_table(rows)
    assert row["units"] == 3 and (row["merge"], row["steps"], row["layers"]) == ("update", [0, 1], "20-29")
    # by hand: a/0 vs seeds 0-2 (1, 0, 0); a/1 vs seeds 1-3 (0, 0, 0); b/1 vs seeds 1-3 (0, 0, 1)
    assert row["baseline"] == pytest.approx(np.mean([1 / 3, 0, 1 / 3]))
    assert row["members"] == pytest.approx(np.mean([2 / 3, 1 / 3, 1]))
    assert row["consensus"] == pytest.approx(np.mean([0, 1, 1]))
    assert (row["best_of_3"], row["best_member"]) == (pytest.approx(2 / 3), pytest.approx(1.0))
    # the medoid (grey level nearest the three's mean): a/0 -> seed 1 (0), a/1 -> seed 2 (0), b/1 -> seed 3 (1)
    assert row["baseline_medoid"] == pytest.approx(1 / 3)
    assert row["consensus_vs_baseline_medoid"]["diff"] == pytest.approx(np.mean([0, 1, 0]))
    differences = np.array([2 / 3 - 1 / 3, 1 / 3 - 0, 1 - 1 / 3])
    reference = stats.ttest_1samp(differences, 0.0)
    low, high = reference.confidence_interval(0.95)
    got = row["members_vs_baseline"]
    assert got["diff"] == pytest.approx(differences.mean())
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert got["p"] == pytest.approx(reference.pvalue)


def test_score_metric_uses_the_task_score():
    baselines = {("a", seed): 0 for seed in range(3)}
    rows = _rows(baselines, [("a", 0, [0, 0, 0], 0)])
    for row in rows:
        row["score"] = 0.9 if row["method"] == "ensemble" else 0.3 + 0.1 * row["seed"]
    (solved,) = ensemble_table(rows, "solved")
    (score,) = ensemble_table(rows, "score")
    assert solved["members"] == solved["baseline"] == 0.0 and np.isnan(solved["baseline_medoid"])  # no frames
    assert score["members"] == pytest.approx(0.9) and score["baseline"] == pytest.approx(0.4)
    assert score["best_of_3"] == pytest.approx(0.5)
