"""The Compare view's intervals stay inside the range of what they estimate (issue 28): a score of 1.0 on every run
gives an interval <= 1, a mostly-solved baseline no longer reads 0.88-1.004, proportions get Wilson intervals.

References are scipy's (binomtest's Wilson interval, the t quantile, logit/expit), on stores written as a sweep
writes them and read through the dashboard's own queries.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from scipy import stats

from cos_ray.dashboard import compare
from cos_ray.dashboard.connection import StoreConnection
from cos_ray.dashboard.filters import RunFilter
from cos_ray.figures.intervals import bounded_interval, difference_interval, t_interval, wilson
from cos_ray.store.location import Store
from cos_ray.store.rows import sweep_row
from cos_ray.store.write import write_sweep, write_unit

SWEEP = "boundsweep0000000"


def write_scored_store(root, baseline_scores, ensemble_scores):
    """Baseline runs (task t, seed i) scored `baseline_scores[i]`, and 2-member ensemble units on the same seeds
    scored `ensemble_scores[i]`, one task; as a sweep writes them (one unit at a time)."""
    store, now, unit_ids = Store(root), datetime.now(timezone.utc), []

    def run(unit_id, member, seed, method, params, score):
        return {"sweep_id": SWEEP, "unit_id": unit_id, "run_id": f"{unit_id}-{member}", "member": member,
                "task_id": "In-Domain_50/maze/00000", "task_family": "maze", "seed": seed, "method": method,
                "params": json.dumps(params, sort_keys=True), "model": "tiny", "settings": "{}", "score": score,
                "scores": json.dumps({"task_specific": score}), "status": "ok", "started_at": now,
                "finished_at": now}

    for seed, score in enumerate(baseline_scores):
        unit_ids.append(f"{len(unit_ids):016x}")
        write_unit(store, unit_ids[-1], [run(unit_ids[-1], 0, seed, "baseline", {}, score)], [], [])
    for first in range(0, len(ensemble_scores), 2):
        unit_ids.append(f"{len(unit_ids):016x}")
        members = [run(unit_ids[-1], member, first + member, "ensemble", {"size": 2, "merge": "update"},
                       ensemble_scores[first + member]) for member in range(2)]
        write_unit(store, unit_ids[-1], members, [], [])
    write_sweep(store, sweep_row(SWEEP, "bounds", "bounds.yaml", {}, "tiny", unit_ids, "done", done=len(unit_ids),
                                 started_at=now, finished_at=now))
    return root


def test_a_score_of_one_on_every_run_keeps_its_interval_at_or_below_one(tmp_path):
    root = write_scored_store(tmp_path / "store", [1.0] * 8, [1.0] * 8)
    connection = StoreConnection(str(root))
    try:
        table = {row["method"]: row for row in compare.method_comparison(connection, RunFilter()).to_pylist()}
        best = compare.ensemble_vs_best_of_n(connection, RunFilter()).to_pylist()
    finally:
        connection.close()
    wilson_8 = stats.binomtest(8, 8).proportion_ci(0.95, method="wilson")
    for method in ("baseline", "ensemble"):
        row = table[method]
        assert row["mean"] == 1.0 and row["ci_high"] <= 1.0, row
        assert row["ci_low"] == pytest.approx(wilson_8.low, abs=1e-12) and row["ci_high"] == pytest.approx(1.0)
    assert table["ensemble"]["diff"] == 0 and -1 <= table["ensemble"]["diff_ci_low"] <= 0 <= \
        table["ensemble"]["diff_ci_high"] <= 1
    assert best and best[0]["diff_ci_high"] <= 1


def test_a_mostly_solved_baseline_stays_inside_zero_one(tmp_path):
    """The issue's case: a t interval on these scores reads 0.88-1.004; the logit interval stays below 1."""
    scores = [1.0] * 14 + [0.5, 0.75]
    assert stats.t.interval(0.95, 15, loc=np.mean(scores), scale=stats.sem(scores))[1] > 1  # the old answer
    root = write_scored_store(tmp_path / "store", scores, scores)
    connection = StoreConnection(str(root))
    try:
        row = {r["method"]: r for r in compare.method_comparison(connection, RunFilter()).to_pylist()}["baseline"]
    finally:
        connection.close()
    m = np.mean(scores)
    half = stats.t.ppf(0.975, 15) * stats.sem(scores) / (m * (1 - m))
    from scipy.special import expit, logit

    assert row["ci_low"] == pytest.approx(expit(logit(m) - half), abs=1e-9)
    assert row["ci_high"] == pytest.approx(expit(logit(m) + half), abs=1e-9)
    assert 0 <= row["ci_low"] < row["mean"] < row["ci_high"] < 1


@pytest.mark.parametrize("k,n", [(0, 1), (0, 10), (3, 10), (10, 10), (57, 200), (1, 3)])
def test_wilson_matches_scipy(k, n):
    reference = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(reference.low, abs=1e-12) and high == pytest.approx(reference.high, abs=1e-12)
    assert wilson(0, 0) == (None, None)


def test_the_bounded_interval_covers_the_mean_of_mostly_solved_scores():
    """Coverage on scores piled up at 1 (1.0 with probability 0.9, else uniform: mean 0.95), 20 runs: close to 95%
    (measured 93%), never outside [0, 1] - where the t interval passes 1 on most samples (83%)."""
    rng = np.random.default_rng(0)
    truth, trials, covered, t_outside = 0.95, 2000, 0, 0
    for _ in range(trials):
        sample = np.where(rng.uniform(size=20) < 0.9, 1.0, rng.uniform(size=20))
        low, high = bounded_interval(float(sample.mean()), float(sample.std(ddof=1)), 20)
        assert 0 <= low <= high <= 1
        covered += low <= truth <= high
        t_outside += t_interval(float(sample.mean()), float(sample.std(ddof=1)), 20)[1] > 1
    assert 0.91 <= covered / trials <= 0.98, covered / trials
    assert t_outside / trials > 0.5


def test_edges_of_the_bounded_interval():
    assert bounded_interval(None, None, 0) == (None, None) and bounded_interval(0.5, 0.1, 1) == (None, None)
    assert bounded_interval(0.4, 0.0, 5) == (0.4, 0.4)  # no spread inside the range: nothing to widen
    zero = bounded_interval(0.0, 0.0, 5)
    assert zero[0] == 0.0 and zero[1] == pytest.approx(stats.binomtest(0, 5).proportion_ci(method="wilson").high)
    assert bounded_interval(3.0, 1.0, 4) == t_interval(3.0, 1.0, 4)  # not a [0, 1] value: the plain t interval
    low, high = difference_interval(0.9, 0.2, 5)
    assert -1 <= low < 0.9 < high <= 1
