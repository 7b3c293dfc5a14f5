"""A search unit run in one process, as a worker runs it (`run_program`), on a held-out maze of the trained tiny
reasoner, its rows built by the sweep's own row builder: the kept candidate's rows are those of the plain baseline
run of its seed; every pruned candidate is recorded (status pruned, the step it stopped at, its rows up to there);
`runs.forward_passes` equals what a forward hook on the experts counts (independent of the code under test)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
import torch

SPEC = """\
name: search-run
model: {name: tiny-reasoner, workers: 1}
tasks: {generate: {family: maze, n: 1, seed: 3, params: {cells: 4, size: 64, frames: 9}}}
seeds: "0-2"
sampler: {steps: 4}
methods:
  - baseline
  - search: {candidates: 3, select_at: 1, keep: 1, verifier: {grid: [task, consensus]}, starts: [0]}
  - search: {candidates: 3, select_at: 0, keep: 2, rounds: [{select_at: 2, keep: 1}], verifier: consensus, starts: [0]}
  - search: {candidates: 3, select_at: 1, keep: 2, verifier: {grid: [task, consensus]}, starts: [0]}
probes:
  x0: {every: 1, decode: true}
"""
SELECT = 1
# Columns of a run that belong to its unit or its sweep, not to its trajectory: ids, method, the unit's seeds, times.
# x0_spread (steps) is the spread across the unit's members: a baseline unit has one member, so it has none.
UNIT_COLUMNS = {"sweep_id", "unit_id", "run_id", "member", "method", "params", "seeds", "layout", "duration_s",
                "started_at", "finished_at", "video", "filmstrip", "worker", "device", "spec_hash"}


class PassCounter:
    """Transformer forward passes by batch row: a torch forward hook on each expert (not the engine's clock)."""

    def __init__(self, pipe):
        self.count = 0
        self.handles = [module.register_forward_hook(self.hook, with_kwargs=True)
                        for module in (pipe.transformer, pipe.transformer_2) if module is not None]

    def hook(self, module, args, kwargs, output):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]  # (batch, channels, f, h, w)
        self.count += int(hidden.shape[0])

    def close(self):
        for handle in self.handles:
            handle.remove()


@pytest.fixture(scope="module")
def ran(tmp_path_factory, preset_cache):
    """{unit: (runs rows, steps rows, layers rows, members, hook-counted passes)} of every unit of SPEC."""
    torch.set_num_threads(1)
    from cos_ray.cluster.outcome import Attempt, UnitOutcome
    from cos_ray.model.loader import load_pipeline
    from cos_ray.probes.program import run_program
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.store.location import Store
    from cos_ray.sweep.results import unit_results

    folder = tmp_path_factory.mktemp("search-run")
    (folder / "search.yaml").write_text(SPEC)
    units = expand(load_spec(str(folder / "search.yaml")))
    model = load_pipeline("tiny-reasoner", device="cpu")
    store = Store(str(folder / "results"))
    results = {}
    for unit in units:
        loaded = unit.loaded()
        counter = PassCounter(model.pipe)
        try:
            members = run_program(model, loaded.task, loaded.settings, list(loaded.seeds), loaded.program,
                                  ensemble=loaded.ensemble, x0=loaded.x0)
        finally:
            counter.close()
        now = datetime.now(timezone.utc)
        outcome = UnitOutcome(unit, members=members, attempts=[Attempt(1, now, now)])
        runs, steps, layers = unit_results(store, outcome, "sweep", unit.settings.fps)
        results[unit.unit_id] = (unit, runs, steps, layers, members, counter.count)
    return results


def of(ran, method, **params):
    return [value for value in ran.values() if value[0].method == method
            and all(value[0].params.get(key) == item for key, item in params.items())]


def trajectory_row(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in UNIT_COLUMNS}


@pytest.mark.parametrize("verifier", ["task", "consensus"])
def test_the_kept_candidate_is_the_baseline_run_of_its_seed(ran, verifier):
    (unit, runs, steps, layers, members, _), = of(ran, "search", verifier=verifier, rounds=None, keep=1)
    kept = [row for row in runs if row["status"] == "ok"]
    assert len(kept) == 1, runs
    seed = kept[0]["seed"]
    (_, base_runs, base_steps, _, base_members, _), = [value for value in of(ran, "baseline")
                                                       if value[0].seeds == (seed,)]
    assert trajectory_row(kept[0]) == trajectory_row(base_runs[0])  # scores, lock-in, commit step, passes, ...
    member = members[kept[0]["member"]]
    assert np.array_equal(member.video, base_members[0].video)
    assert np.array_equal(member.final_latent, base_members[0].final_latent)
    assert np.array_equal(member.filmstrip, base_members[0].filmstrip)
    ours = [{k: v for k, v in row.items() if k not in ("run_id", "unit_id", "x0_spread")}
            for row in steps if row["run_id"] == kept[0]["run_id"]]
    theirs = [{k: v for k, v in row.items() if k not in ("run_id", "unit_id", "x0_spread")} for row in base_steps]
    assert ours == theirs and len(ours) == unit.settings.steps
    assert kept[0]["video"] is not None


@pytest.mark.parametrize("verifier", ["task", "consensus"])
def test_pruned_candidates_are_recorded_with_the_step_they_stopped_at(ran, verifier):
    (unit, runs, steps, layers, members, _), = of(ran, "search", verifier=verifier, rounds=None, keep=1)
    assert [row["seed"] for row in runs] == [0, 1, 2]  # every candidate has its row: none lost
    pruned = [row for row in runs if row["status"] == "pruned"]
    assert len(pruned) == 2
    for row in pruned:
        assert row["stop_step"] == SELECT and row["video"] is None and row["score"] is None
        assert "pruned" in row["score_reason"]
        assert row["filmstrip"] is not None  # its decoded x̂0 up to the selection step
        assert sorted(r["step"] for r in steps if r["run_id"] == row["run_id"]) == list(range(SELECT + 1))
    judged = {row["run_id"]: row for row in layers if row["kind"] == "search"}
    assert set(judged) == {row["run_id"] for row in runs}
    assert all(row["layer"] == verifier and row["step"] == SELECT for row in judged.values())
    kept = next(row["run_id"] for row in runs if row["status"] == "ok")
    assert judged[kept]["layer_index"] == 0  # ranked first
    assert judged[kept]["value"] == max(row["value"] for row in judged.values())
    answer = [row["run_id"] for row in layers if row["kind"] == "consensus"]
    assert answer == [kept]  # the search's answer in the `answers` view


def test_forward_passes_are_those_a_hook_on_the_experts_counts(ran):
    steps = 4
    for unit, runs, _, _, _, counted in ran.values():
        assert sum(row["forward_passes"] for row in runs) == counted, (unit.method, runs)
        if unit.method == "baseline":
            assert counted == 2 * steps  # CFG: cond + uncond at every step
        elif not unit.params.get("rounds"):  # 3 candidates through step SELECT, the kept ones on to the end
            assert counted == 2 * (3 * (SELECT + 1) + unit.params["keep"] * (steps - SELECT - 1))
        else:  # 3 candidates through step 0, 2 of them through step 2, 1 to the end
            assert counted == 2 * (3 * 1 + 2 * 2 + 1 * 1)


def test_a_search_with_rounds_prunes_at_each_selection_and_keeps_the_baseline_rows(ran):
    (unit, runs, steps, layers, members, _), = [value for value in of(ran, "search") if value[0].params.get("rounds")]
    assert unit.params["rounds"] == [{"select_at": 2, "keep": 1}]
    by_status = {}
    for row in runs:
        by_status.setdefault((row["status"], row["stop_step"]), []).append(row)
    assert sorted((key, len(rows)) for key, rows in by_status.items()) == [
        (("ok", None), 1), (("pruned", 0), 1), (("pruned", 2), 1)]
    (kept,) = by_status[("ok", None)]
    (_, base_runs, _, _, base_members, _), = [value for value in of(ran, "baseline") if value[0].seeds == (kept["seed"],)]
    assert trajectory_row(kept) == trajectory_row(base_runs[0])
    assert np.array_equal(members[kept["member"]].video, base_members[0].video)
    judged = {}
    for row in layers:
        if row["kind"] == "search":
            judged.setdefault(row["run_id"], []).append(row["step"])
    late = by_status[("pruned", 2)][0]["run_id"]
    early = by_status[("pruned", 0)][0]["run_id"]
    assert judged == {kept["run_id"]: [0, 2], late: [0, 2], early: [0]}  # judged at every selection it reached
    assert sorted(r["step"] for r in steps if r["run_id"] == late) == [0, 1, 2]


@pytest.mark.parametrize("verifier", ["task", "consensus"])
def test_of_two_kept_the_answer_is_the_verifiers_pick_at_the_end(ran, verifier):
    """Two kept to the end: `task` answers with the one whose final video scores higher (runs.score, the sweep's own
    scoring of the stored video); `consensus` cannot tell two apart (equidistant from their mean), so its answer is
    the one it ranked first at the selection - never the lower seed by default."""
    (unit, runs, steps, layers, members, _), = of(ran, "search", verifier=verifier, keep=2, rounds=None)
    kept = [row for row in runs if row["status"] == "ok"]
    assert len(kept) == 2 and all(row["video"] is not None for row in kept)
    rank_at_select = {row["run_id"]: row["layer_index"] for row in layers
                      if row["kind"] == "search" and row["step"] == SELECT}
    if verifier == "task":
        expected = max(kept, key=lambda row: (round(row["score"], 6), -rank_at_select[row["run_id"]]))
    else:
        expected = min(kept, key=lambda row: rank_at_select[row["run_id"]])
    answer = [row["run_id"] for row in layers if row["kind"] == "consensus"]
    assert answer == [expected["run_id"]], (kept, rank_at_select, answer)
    final = [row for row in layers if row["kind"] == "search" and row["step"] == unit.settings.steps - 1]
    assert sorted(row["run_id"] for row in final) == sorted(row["run_id"] for row in kept)  # judged again at the end
