"""The dashboard's queries (`cos_ray.dashboard`, no Streamlit) against a real tiny sweep's store and a probe store.

Expected numbers are computed here from the Parquet files with pyarrow, numpy and scipy, not with the dashboard's SQL.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest
from scipy import stats

from cos_ray.dashboard import chain, compare, probes, runs, sweeps
from cos_ray.dashboard.connection import MissingStore, StoreConnection
from cos_ray.dashboard.filters import RunFilter, filter_options, setting_label
from cos_ray.dashboard.media import media_bytes
from cos_ray.errors import UsageError
from test_dashboard_stores import ENERGY_LAYERS, FRAMES, STEPS, overall, read, write_probe_store


@pytest.fixture(scope="module")
def sweep_store(small_sweep):
    _, store, _ = small_sweep
    connection = StoreConnection(str(store))
    yield store, connection
    connection.close()


@pytest.fixture(scope="module")
def probe_store(tmp_path_factory):
    root = write_probe_store(tmp_path_factory.mktemp("probe-store") / "store")
    connection = StoreConnection(str(root))
    yield root, connection
    connection.close()


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(MissingStore, match="does not exist"):
        StoreConnection(str(tmp_path / "nowhere"))


def test_sweeps_list_has_status_progress_and_run_counts(sweep_store):
    store, connection = sweep_store
    expected_sweeps, expected_runs = read(store, "sweeps").to_pylist(), read(store, "runs")
    table = sweeps.sweeps_table(connection).to_pylist()
    assert [row["sweep_id"] for row in table] == [row["sweep_id"] for row in expected_sweeps]
    row, sweep = table[0], expected_sweeps[0]
    assert (row["status"], row["done"], row["units"]) == (sweep["status"], sweep["done"], sweep["units"]) == \
        ("done", 8, 8)
    assert row["progress"] == 1.0
    assert row["runs"] == expected_runs.num_rows == 12
    assert close(row["mean_score"], float(np.mean(expected_runs.column("score").to_numpy())))
    assert sweeps.store_summary(connection) == {"sweeps": 1, "runs": 12, "steps": read(store, "steps").num_rows}


def test_runs_pages_cover_the_filtered_runs_once(sweep_store):
    store, connection = sweep_store
    expected = read(store, "runs")
    where = RunFilter()
    summary = runs.runs_summary(connection, where)
    assert summary["runs"] == expected.num_rows and summary["ok"] == expected.num_rows and summary["failed"] == 0
    assert summary["units"] == len(set(expected.column("unit_id").to_pylist()))
    assert close(summary["mean_overall"], float(np.mean([overall(row) for row in expected.to_pylist()])))
    seen = []
    for page in range(runs.pages(summary["runs"], 5)):
        table = runs.runs_page(connection, where, page, 5, "score_overall", descending=True)
        assert table.num_rows == min(5, summary["runs"] - 5 * page)
        seen += table.to_pylist()
    assert sorted(row["run_id"] for row in seen) == sorted(expected.column("run_id").to_pylist())
    overalls = [row["score_overall"] for row in seen]
    assert overalls == sorted(overalls, reverse=True)
    with pytest.raises(ValueError, match="order"):
        runs.runs_page(connection, where, order="score; DROP TABLE runs")


def test_runs_filters_by_method_family_and_parameters(sweep_store):
    store, connection = sweep_store
    expected = read(store, "runs").to_pylist()
    options = filter_options(connection)
    assert options["methods"] == ["baseline", "ensemble"] and options["families"] == ["maze"]
    assert options["params"]["merge"] == ['"update"'] and options["params"]["size"] == ["2"]
    ensemble = [row for row in expected if row["method"] == "ensemble"]
    by_param = RunFilter(params=(("merge", ('"update"',)),))
    assert runs.runs_summary(connection, by_param)["runs"] == len(ensemble) == 8
    assert runs.runs_summary(connection, RunFilter(params=(("size", ('"2"',)),)))["runs"] == 0  # 2, not "2"
    assert runs.runs_summary(connection, RunFilter(methods=("baseline",), families=("maze",)))["runs"] == 4
    assert runs.runs_summary(connection, RunFilter(families=("pattern",)))["runs"] == 0
    one_seed = RunFilter(methods=("baseline",), sweeps=(expected[0]["sweep_id"],))
    page = runs.runs_page(connection, one_seed, 0, 50, "seed").to_pylist()
    assert [row["seed"] for row in page] == sorted(row["seed"] for row in expected if row["method"] == "baseline")


def logit_interval(values, low=0.0, high=1.0):
    """The reference for a bounded mean's interval: the t interval on the logit scale (delta method), mapped back;
    with every value at one end, scipy's Wilson interval of n of n (docs/results.md)."""
    from scipy.special import expit, logit

    unit = (np.asarray(values, float) - low) / (high - low)
    m, n = float(np.mean(unit)), len(unit)
    if m in (0.0, 1.0):
        wilson = stats.binomtest(round(m * n), n).proportion_ci(0.95, method="wilson")
        lo, hi = wilson.low, wilson.high
    else:
        half = stats.t.ppf(0.975, n - 1) * stats.sem(unit) / (m * (1 - m))
        lo, hi = expit(logit(m) - half), expit(logit(m) + half)
    return low + lo * (high - low), low + hi * (high - low)


def _independent_comparison(rows, value):
    """{setting: (n, mean, sd, paired diffs)} with pairing by (model, settings, task, seed), computed in Python."""
    cells = defaultdict(list)
    for row in rows:
        if value(row) is not None:
            cells[(row["method"], row["params"], row["model"], row["settings"], row["task_id"], row["seed"])].append(
                value(row))
    baseline = {key[2:]: np.mean(v) for key, v in cells.items() if key[0] == "baseline"}
    out = {}
    for method, params in {(key[0], key[1]) for key in cells}:
        values = [value(row) for row in rows if (row["method"], row["params"]) == (method, params)
                  and value(row) is not None]
        diffs = [np.mean(v) - baseline[key[2:]] for key, v in cells.items()
                 if key[:2] == (method, params) and method != "baseline" and key[2:] in baseline]
        out[setting_label(method, params)] = (len(values), float(np.mean(values)), values, diffs)
    return out


@pytest.mark.parametrize("kind", ["score", "score_overall"])
def test_method_comparison_matches_an_independent_paired_t_test(sweep_store, kind):
    store, connection = sweep_store
    rows = read(store, "runs").to_pylist()
    value = (lambda row: row["score"]) if kind == "score" else overall
    expected = _independent_comparison(rows, value)
    assert compare.score_kinds(connection, RunFilter()) == ["score", "score_overall"]
    table = compare.method_comparison(connection, RunFilter(), kind).to_pylist()
    assert {row["setting"] for row in table} == set(expected)
    for row in table:
        n, mean, values, diffs = expected[row["setting"]]
        assert row["runs"] == n and close(row["mean"], mean)
        if np.std(values) > 1e-9:
            low, high = logit_interval(values)
            assert close(row["ci_low"], low, 1e-7) and close(row["ci_high"], high, 1e-7)
        assert 0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1
        assert row["pairs"] == len(diffs)
        if row["method"] == "baseline":
            assert row["pairs"] == 0
            continue
        assert row["pairs"] == 4  # seeds 0, 1 of the ensembles on both tasks have baselines; seed 2 has none
        assert close(row["diff"], float(np.mean(diffs)), 1e-12)
        if np.std(diffs) > 1e-9:
            test = stats.ttest_1samp(diffs, 0.0)
            low, high = logit_interval(diffs, -1.0, 1.0)
            assert close(row["p_value"], float(test.pvalue), 1e-7)
            assert close(row["diff_ci_low"], low, 1e-7) and close(row["diff_ci_high"], high, 1e-7)
            assert -1 <= row["diff_ci_low"] <= row["diff"] <= row["diff_ci_high"] <= 1
        else:  # equal up to rounding (the tiny model scores every run alike): a degenerate interval
            assert close(row["diff_ci_low"], row["diff"], 1e-9) and close(row["diff_ci_high"], row["diff"], 1e-9)


@pytest.mark.parametrize("kind", ["score", "score_overall"])
def test_ensemble_against_best_of_n_baselines_with_the_same_seeds(sweep_store, kind):
    store, connection = sweep_store
    rows = read(store, "runs").to_pylist()
    value = (lambda row: row["score"]) if kind == "score" else overall
    baseline = {(row["task_id"], row["seed"]): value(row) for row in rows if row["method"] == "baseline"}
    units = defaultdict(list)
    for row in rows:
        if row["method"] == "ensemble":
            units[row["unit_id"]].append(row)
    diffs, best_diffs = [], []
    for members in units.values():
        keys = [(row["task_id"], row["seed"]) for row in members]
        if all(key in baseline for key in keys):
            best_of_n = max(baseline[key] for key in keys)
            diffs.append(np.mean([value(row) for row in members]) - best_of_n)
            best_diffs.append(max(value(row) for row in members) - best_of_n)
    assert len(diffs) == 2  # the units started at seed 0 (seeds 0, 1); those at seed 1 need a seed-2 baseline
    table = compare.ensemble_vs_best_of_n(connection, RunFilter(), kind).to_pylist()
    assert len(table) == 1
    row = table[0]
    assert row["units"] == 2 and row["size"] == 2
    assert close(row["diff"], float(np.mean(diffs)), 1e-12)
    assert close(row["diff_best"], float(np.mean(best_diffs)), 1e-12)
    if np.std(diffs) > 1e-9:
        low, high = logit_interval(diffs, -1.0, 1.0)
        assert close(row["diff_ci_low"], low, 1e-7) and close(row["diff_ci_high"], high, 1e-7)


def test_method_filters_leave_the_baseline_side_of_the_pairs(sweep_store):
    _, connection = sweep_store
    only = compare.method_comparison(connection, RunFilter(methods=("ensemble",)), "score_overall").to_pylist()
    assert [row["method"] for row in only] == ["ensemble"] and only[0]["pairs"] == 4


def test_step_curves_and_lock_in(sweep_store):
    store, connection = sweep_store
    run_rows = {row["run_id"]: row for row in read(store, "runs").to_pylist()}
    groups = defaultdict(list)
    for row in read(store, "steps").to_pylist():
        if row["x0_std"] is not None:
            groups[(run_rows[row["run_id"]]["method"], row["step"])].append(row["x0_std"])
    curves = chain.step_curves(connection, RunFilter(), "x0_std").to_pylist()
    assert {(row["method"], row["step"]) for row in curves} == set(groups)
    for row in curves:
        values = groups[(row["method"], row["step"])]
        assert row["runs"] == len(values) and close(row["mean"], float(np.mean(values)))
        low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
        assert close(row["ci_low"], low, 1e-7) and close(row["ci_high"], high, 1e-7)
    spreads = defaultdict(list)  # exploration: the members' x̂0 apart, per (method, step), recounted
    for row in read(store, "steps").to_pylist():
        if row.get("x0_spread") is not None:
            spreads[(run_rows[row["run_id"]]["method"], row["step"])].append(row["x0_spread"])
    assert spreads, "the sweep's ensembles record their members' x̂0 spread"
    spread_curves = chain.step_curves(connection, RunFilter(), "x0_spread").to_pylist()
    assert {(row["method"], row["step"]) for row in spread_curves} == set(spreads)
    for row in spread_curves:
        assert row["runs"] == len(spreads[(row["method"], row["step"])])
        assert close(row["mean"], float(np.mean(spreads[(row["method"], row["step"])])))
    with pytest.raises(ValueError, match="metric"):
        chain.step_curves(connection, RunFilter(), "score) FROM runs --")
    for row in chain.step_curves(connection, RunFilter(), "score").to_pylist():  # a bounded metric: inside [0, 1]
        assert row["ci_low"] is None or 0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1

    locked = {row["method"]: row for row in chain.lock_in(connection, RunFilter()).to_pylist()}
    for method in ("baseline", "ensemble"):
        mine = [row for row in run_rows.values() if row["method"] == method]
        steps = [row["lock_in_step"] for row in mine if row["lock_in_step"] is not None]
        assert locked[method]["runs"] == len(mine)
        assert locked[method]["locked"] == len(steps)
        assert close(locked[method]["mean_lock_in_step"], float(np.mean(steps)) if steps else None)
        commits = [row["commit_step"] for row in mine if row["commit_step"] is not None]
        assert close(locked[method]["mean_commit_step"], float(np.mean(commits)) if commits else None)
        wilson = stats.binomtest(len(steps), locked[method]["scored"]).proportion_ci(0.95, method="wilson")
        assert close(locked[method]["locked_ci_low"], wilson.low, 1e-9)
        assert close(locked[method]["locked_ci_high"], wilson.high, 1e-9)
    histogram = chain.lock_in_histogram(connection, RunFilter()).to_pylist()
    assert sum(row["runs"] for row in histogram) == sum(row["locked"] for row in locked.values())


def test_filmstrip_of_a_run_is_read_lazily_from_the_store(sweep_store):
    store, connection = sweep_store
    choices = chain.runs_with_filmstrips(connection, RunFilter())
    assert sorted(choices) == sorted(read(store, "runs").column("run_id").to_pylist())
    detail = chain.run_detail(connection, choices[0])
    steps = [row for row in read(store, "steps").to_pylist() if row["run_id"] == choices[0]]
    assert detail["x0_steps"] == sorted(row["step"] for row in steps if row["x0_mean"] is not None)
    image = media_bytes(connection.store, detail["run"]["filmstrip"])
    assert image == (store / detail["run"]["filmstrip"]).read_bytes() and image[:8] == b"\x89PNG\r\n\x1a\n"
    assert chain.run_detail(connection, "no-such-run") is None
    for bad in ("/etc/passwd", "media/../../secret", "media/u/member-0/../../../x", "runs/part-x.parquet"):
        with pytest.raises(UsageError, match="media path"):
            media_bytes(connection.store, bad)


def test_probes_absent_from_a_store_without_them(sweep_store):
    _, connection = sweep_store
    found = probes.presence(connection, RunFilter())
    assert not probes.any_probe(found)


def test_noise_and_swap_outcomes_by_position(probe_store):
    root, connection = probe_store
    rows = read(root, "runs").to_pylist()
    found = probes.presence(connection, RunFilter())
    assert found == {"noise": ["noise_at_step", "noise_at_frame"], "swap": True, "cka": True, "energy": True,
                     "references": ["baseline", "first_frame", "ground_truth"]}

    def expected(method, key):
        groups = defaultdict(list)
        for row in rows:
            if row["method"] == method:
                groups[json.loads(row["params"])[key]].append(row["score"])
        return groups

    noise = probes.noise_outcomes(connection, RunFilter()).to_pylist()
    swap = probes.swap_outcomes(connection, RunFilter()).to_pylist()
    baseline = {(r["task_id"], r["seed"]): r["score"] for r in rows if r["method"] == "baseline"}
    for row in swap:
        swapped = [r for r in rows if r["method"] == "swap" and json.loads(r["params"])["layer"] == row["position"]]
        assert close(row["a_alone"], float(np.mean([baseline[(r["task_id"], r["seed"])] for r in swapped])))
        b_alone = [baseline[(json.loads(r["params"])["source_task"], r["seed"])] for r in swapped]
        assert close(row["b_alone"], float(np.mean(b_alone)))
    for table, methods in ((noise, {"noise_at_step": "step", "noise_at_frame": "frame"}), (swap, {"swap": "layer"})):
        want = {(method, position): values for method, key in methods.items()
                for position, values in expected(method, key).items()}
        assert {(row["method"], row["position"]) for row in table} == set(want)
        for row in table:
            values = want[(row["method"], row["position"])]
            assert row["runs"] == len(values) and close(row["mean"], float(np.mean(values)))
    levels = {row["method"]: row["mean"] for row in probes.reference_levels(connection, RunFilter()).to_pylist()}
    for method in ("baseline", "first_frame", "ground_truth"):
        assert close(levels[method], float(np.mean([r["score"] for r in rows if r["method"] == method])))


def test_energy_maps_and_cka_curves(probe_store):
    root, connection = probe_store
    runs_by_id = {row["run_id"]: row for row in read(root, "runs").to_pylist()}
    layers = read(root, "layers").to_pylist()
    energy = [row for row in layers if row["kind"] == "energy"]
    heat = probes.energy_heatmap(connection, RunFilter()).to_pylist()
    assert len(heat) == len(ENERGY_LAYERS) * STEPS
    for cell in heat:
        values = [row["value"] for row in energy if (row["layer_index"], row["step"]) == (cell["layer"], cell["step"])]
        assert close(cell["energy"], float(np.mean(values)))
    one = energy[0]["run_id"]
    single = probes.energy_heatmap(connection, RunFilter(), run_id=one).to_pylist()
    assert {(c["layer"], c["step"]): c["energy"] for c in single} == \
        {(r["layer_index"], r["step"]): r["value"] for r in energy if r["run_id"] == one}
    assert probes.energy_steps(connection, RunFilter()) == list(range(STEPS))
    frames = probes.energy_per_frame(connection, RunFilter(), step=2).to_pylist()
    assert len(frames) == len(ENERGY_LAYERS) * FRAMES
    for cell in frames:
        values = [row["frame_means"][cell["frame"]] for row in energy
                  if row["layer_index"] == cell["layer"] and row["step"] == 2]
        assert close(cell["energy"], float(np.mean(values)))
    cka = probes.cka_curves(connection, RunFilter(methods=("noise_at_step",))).to_pylist()
    assert {row["method"] for row in cka} == {"noise_at_step"}
    for cell in cka:
        values = [row["value"] for row in layers if row["kind"] == "cka" and row["step"] == cell["step"]
                  and runs_by_id[row["run_id"]]["params"] == cell["params"]]
        assert cell["runs"] == len(values) == 4 and close(cell["mean"], float(np.mean(values)))
