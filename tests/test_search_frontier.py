"""The search frontier (`cos_ray.figures.search_frontier`): its CSV recounted with numpy and scipy from the rows it
was drawn from - pairing by search unit, best-of-N at the end (task pick and pixel medoid), passes per task, Wilson
and paired Student-t intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from cos_ray.figures.search_frontier import frontier_table

TASKS = 6
N = 3
PER_STEP, STEPS, SELECT = 2, 10, 2  # CFG: 2 passes a step
FULL = PER_STEP * STEPS


def rows_of(seed: int = 0):
    """Baselines of TASKS tasks x N seeds and one search unit per task and verifier, drawn at random."""
    rng = np.random.default_rng(seed)
    rows = []
    truth = {}
    for task in range(TASKS):
        for s in range(N):
            solved = bool(rng.random() < 0.5)
            truth[(task, s)] = solved
            score = 1.0 if task == 0 else float(rng.random())  # task 0: every seed ties at the top
            rows.append({"run_id": f"b{task}-{s}", "unit_id": f"b{task}-{s}", "task_id": f"t{task}", "seed": s,
                         "seeds": [s], "method": "baseline", "params": "{}", "score": score,
                         "status": "ok", "forward_passes": FULL, "answer": False, "solved": solved,
                         "frames": np.full((2, 4, 4, 3), int(rng.integers(0, 255)), dtype=np.uint8)})
        for verifier in ("task", "consensus"):
            params = json.dumps({"candidates": N, "keep": 1, "select_at": SELECT, "verifier": verifier})
            kept = int(rng.integers(0, N))
            for s in range(N):
                is_kept = s == kept
                rows.append({"run_id": f"{verifier}{task}-{s}", "unit_id": f"{verifier}{task}", "task_id": f"t{task}",
                             "seed": s, "seeds": list(range(N)), "method": "search", "params": params,
                             "score": None, "status": "ok" if is_kept else "pruned",
                             "forward_passes": FULL if is_kept else PER_STEP * (SELECT + 1), "answer": is_kept,
                             "solved": truth[(task, s)] if is_kept else None})
    return rows


def test_the_csv_is_recounted_from_the_rows():
    rows = rows_of()
    table = frontier_table(rows)
    baselines = {(r["task_id"], r["seed"]): r for r in rows if r["method"] == "baseline"}
    for verifier in ("task", "consensus"):
        got = {row["method"]: row for row in table if row["verifier"] == verifier}
        assert set(got) == {"baseline", "best_of_n_task", "best_of_n_consensus", "search"}
        search, base, task_pick, medoid = [], [], [], []
        passes = []
        for task in range(TASKS):
            bases = [baselines[(f"t{task}", s)] for s in range(N)]
            members = [r for r in rows if r["unit_id"] == f"{verifier}{task}"]
            search.append(float(next(r["solved"] for r in members if r["answer"])))
            passes.append(sum(r["forward_passes"] for r in members))
            base.append(np.mean([b["solved"] for b in bases]))
            top = max(b["score"] for b in bases)
            task_pick.append(np.mean([b["solved"] for b in bases if b["score"] == top]))  # tied: a fair pick's mean
            stack = np.stack([b["frames"] for b in bases]).astype(float)
            distances = [np.linalg.norm(v - stack.mean(axis=0)) for v in stack]
            medoid.append(float(bases[int(np.argmin(distances))]["solved"]))
        assert got["search"]["units"] == TASKS
        assert got["search"]["solved"] == pytest.approx(np.mean(search))
        assert got["baseline"]["solved"] == pytest.approx(np.mean(base))
        assert got["best_of_n_task"]["solved"] == pytest.approx(np.mean(task_pick))
        assert got["best_of_n_consensus"]["solved"] == pytest.approx(np.mean(medoid))
        assert got["search"]["passes_per_task"] == pytest.approx(np.mean(passes)) == PER_STEP * (N * (SELECT + 1)
                                                                                               + STEPS - SELECT - 1)
        assert got["best_of_n_task"]["passes_per_task"] == N * FULL
        assert got["baseline"]["passes_per_task"] == FULL
        assert got["search"]["passes_vs_best_of_n"] == pytest.approx(np.mean(passes) / (N * FULL))
        reference = medoid if verifier == "consensus" else task_pick
        for name, other in (("vs_baseline", base), ("vs_best_of_n", reference)):
            differences = np.array(search) - np.array(other)
            test = stats.ttest_1samp(differences, 0.0)
            low, high = test.confidence_interval(0.95)
            assert got["search"][f"{name}_diff"] == pytest.approx(differences.mean())
            if differences.std() > 0:
                assert (got["search"][f"{name}_ci_low"], got["search"][f"{name}_ci_high"]) == (
                    pytest.approx(low), pytest.approx(high))
                assert got["search"][f"{name}_p"] == pytest.approx(test.pvalue)
        from cos_ray.figures.intervals import bounded_interval

        assert (got["baseline"]["ci_low"], got["baseline"]["ci_high"]) == bounded_interval(
            np.mean(base), np.std(base, ddof=1), TASKS)  # a mean of fractions: not a count
        k = int(sum(search))  # Wilson by hand
        z, n, p = stats.norm.ppf(0.975), TASKS, k / TASKS
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert got["search"]["ci_low"] == pytest.approx(0.0 if k == 0 else max(0.0, centre - half))
        assert got["search"]["ci_high"] == pytest.approx(1.0 if k == n else min(1.0, centre + half))


def test_a_unit_missing_a_baseline_or_its_passes_is_left_out():
    rows = [r for r in rows_of(1) if not (r["method"] == "baseline" and r["task_id"] == "t0" and r["seed"] == 1)]
    for row in rows:
        if row["unit_id"] == "task1":
            row["forward_passes"] = None  # a store written before forward_passes
    got = {(row["verifier"], row["method"]): row["units"] for row in frontier_table(rows)}
    assert got[("task", "search")] == TASKS - 2 and got[("consensus", "search")] == TASKS - 1


def ensemble_rows(rng, params: str = '{"size": 3}'):
    """One ensemble unit per task over the search's seeds: its consensus member drawn at random."""
    rows = []
    for task in range(TASKS):
        answer = int(rng.integers(0, N))
        for s in range(N):
            rows.append({"run_id": f"e{params}{task}-{s}", "unit_id": f"e{params}{task}", "task_id": f"t{task}",
                         "seed": s, "seeds": list(range(N)), "method": "ensemble", "params": params, "score": None,
                         "status": "ok", "forward_passes": FULL, "answer": s == answer,
                         "solved": bool(rng.random() < 0.5)})
    return rows


def test_the_ensemble_over_the_same_seeds_is_a_reference_point():
    rng = np.random.default_rng(7)
    ensemble = ensemble_rows(rng)
    table = frontier_table(rows_of(2) + ensemble)
    answers = [r["solved"] for r in ensemble if r["answer"]]  # one per task, in task order
    for verifier in ("task", "consensus"):
        got = {row["method"]: row for row in table if row["verifier"] == verifier}
        assert got["ensemble"]["solved"] == pytest.approx(np.mean(answers))
        assert got["ensemble"]["passes_per_task"] == N * FULL
        assert got["ensemble"]["units"] == TASKS
    # Two ensemble settings over the same seeds: neither is the reference, and the rest of the table stands.
    twice = frontier_table(rows_of(2) + ensemble + ensemble_rows(rng, '{"size": 3, "steps": [0, 1]}'))
    assert "ensemble" not in {row["method"] for row in twice}
    assert len(twice) == len(table) - 2
