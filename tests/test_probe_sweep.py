"""The Chain-of-Steps probes as sweep methods: specs expand to one unit per index, and a real probe sweep's `layers`
and `steps` rows equal what an in-process `run_program` of the same unit gives."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from cos_ray.spec.expand import expand
from cos_ray.spec.load import validate

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "jobs" / "tasks"
BASE = {
    "model": "tiny",
    "tasks": str(TASKS),  # 2 samples
    "seeds": [0],
    "sampler": {"steps": 4, "frames": 5},  # 2 latent frames
    "methods": ["baseline"],
}


def units_of(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return expand(validate(data))


# -- specs -> units (no model) ---------------------------------------------------------------------------------------

def test_a_range_is_one_unit_per_index_with_the_ids_of_single_indices():
    swept = units_of(methods=[{"noise_at_step": {"step": "0-100%"}}, {"noise_at_frame": {"frame": "0-1"}}])
    assert [(u.method, u.params.get("step", u.params.get("frame"))) for u in swept[:6]] == [
        ("noise_at_step", 0), ("noise_at_step", 1), ("noise_at_step", 2), ("noise_at_step", 3),
        ("noise_at_frame", 0), ("noise_at_frame", 1)]
    assert len(swept) == 2 * 6 and len({u.unit_id for u in swept}) == 12
    single = units_of(methods=[{"noise_at_step": {"step": 2}}])
    assert {u.unit_id for u in single} < {u.unit_id for u in swept}


def test_swap_units_name_run_b_by_its_content():
    by_offset = units_of(methods=[{"swap": {"step": 0, "layer": "0-39"}}])
    assert len(by_offset) == 2 * 40
    first = by_offset[20]
    assert (first.params["layer"], first.params["source"], first.task.task_id) == (20, {"offset": 1},
                                                                                  by_offset[0].task.task_id)
    assert first.swap_source.task_id == first.params["source_task"] != first.task.task_id
    # the same run B named by index: the same unit
    by_index = units_of(methods=[{"swap": {"layer": 20, "source": {"task": 1}}}])
    assert by_index[0].unit_id == first.unit_id
    program = first.loaded().program  # run B read, as the coordinator sends it
    assert (program.swap.layer, program.swap.step, program.swap.mode) == (20, (0,), "update")
    assert program.swap_source.prompt


def test_swap_modes_step_ranges_and_regions_from_the_spec(tmp_path):
    from PIL import Image

    from cos_ray.errors import UsageError

    (unit, *_) = units_of(methods=[{"swap": {"layer": 20, "steps": "0-2", "mode": "stream"}}])
    assert (unit.params["step"], unit.params["mode"], unit.params["region"]) == ([0, 1, 2], "stream", "all")
    assert unit.program.swap.step == (0, 1, 2)  # one unit swapping at every step of the range
    update = units_of(methods=[{"swap": {"layer": 20}}])[0]
    assert update.params["mode"] == "update" and update.unit_id != unit.unit_id  # the default mode, in the id
    Image.new("L", (64, 64), 255).save(tmp_path / "mask.png")
    masked = units_of(methods=[{"swap": {"layer": 20, "region": str(tmp_path / "mask.png")}}])[0]
    assert masked.program.swap.region == str(tmp_path / "mask.png") and masked.unit_id != update.unit_id
    for swap, message in [({"layer": 20, "mode": "sideways"}, "methods[0].swap.mode: expected one of stream, update"),
                          ({"layer": 20, "region": "nope.png"}, "methods[0].swap.region: mask image"),
                          ({"layer": 20, "step": 1, "steps": "0-2"}, "methods[0].swap.steps: give step"),
                          ({"layer": 20, "steps": "0-9"}, "methods[0].swap.steps: '0-9' reaches step 9")]:
        with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
            units_of(methods=[{"swap": swap}])


def test_probes_apply_where_they_can_and_enter_the_ids():
    plain = units_of(methods=["baseline", {"noise_at_step": {"step": 1}}])
    sens = units_of(methods=["baseline", {"noise_at_step": {"step": 1}}], probes={"sensitivity": "latents"})
    energy = units_of(methods=["baseline"], probes={"energy": {"layers": [0, 20], "steps": "0-100%", "every": 2}})
    assert sens[0].unit_id == plain[0].unit_id and sens[0].program is None  # a baseline has no clean run to match
    assert sens[1].unit_id != plain[1].unit_id and sens[1].program.sensitivity == "latents"
    assert energy[0].unit_id != plain[0].unit_id
    config = energy[0].program.energy
    assert (config.layers, config.steps, config.max_side) == ((0, 20), (0, 2, 3), 16)  # every 2, and the last


def test_the_probes_job_validates():
    from cos_ray.spec.load import load_spec

    units = expand(load_spec(ROOT / "jobs" / "probes.yaml"))
    counts = {}
    for unit in units:
        counts[unit.method] = counts.get(unit.method, 0) + 1
    assert counts == {"baseline": 1, "noise_at_step": 10, "noise_at_frame": 3, "swap": 40}


# -- a real probe sweep on the session Ray cluster -------------------------------------------------------------------

PROBE_SWEEP = """\
name: probe-test
model: {name: tiny, workers: 1, groups: 1}
tasks: {generate: {family: maze, n: 1, seed: 0, params: {cells: 3}}}
seeds: [0]
sampler: {steps: 4, frames: 5, height: 128, width: 128}   # 8x8 tokens: some lie on the maze's foreground
methods:
  - baseline
  - noise_at_step: {step: 2}
  - noise_at_frame: {frame: 1}
  - swap: {step: 0, layer: 20, source: SOURCE}
probes:
  energy: {layers: [0, 20]}
  sensitivity: latents
"""


@pytest.fixture(scope="module")
def probe_sweep(ray_cluster, task_dir, tmp_path_factory):
    """(units, store) of a 4-unit probe sweep on one maze: baseline, noise at step 2, noise at latent frame 1, swap at
    layer 20 with run B from a task folder."""
    from cos_ray.spec.load import load_spec
    from cos_ray.store.location import Store
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("probe-sweep")
    spec = folder / "probes.yaml"
    spec.write_text(PROBE_SWEEP.replace("SOURCE", str(task_dir)))
    report = run_sweep(str(spec), str(folder / "results"), progress=False, compact=False)
    assert report.status == "done" and report.done == 4, report
    return {unit.method: unit for unit in expand(load_spec(spec))}, Store(folder / "results")


def sql(store, query) -> list[dict]:
    from cos_ray.store.query import run_sql

    return run_sql(store, query).to_pylist()


_REFERENCES: dict = {}


def reference(tiny_model, unit):
    """The unit's member run in this process: `run_program` with the unit's own program (once per unit)."""
    from cos_ray.probes.program import run_program

    if unit.unit_id not in _REFERENCES:
        loaded = unit.loaded()
        (_REFERENCES[unit.unit_id],) = run_program(tiny_model, loaded.task, unit.settings, list(unit.seeds),
                                                   loaded.program)
    return _REFERENCES[unit.unit_id]


def rows_of(store, unit, kind) -> list[dict]:
    return sql(store, f"SELECT * FROM layers WHERE unit_id = '{unit.unit_id}' AND kind = '{kind}' "
                      "ORDER BY step, layer")


def test_energy_rows_match_the_in_process_run(probe_sweep, tiny_model):
    units, store = probe_sweep
    unit = units["noise_at_step"]
    member = reference(tiny_model, unit)
    stored = rows_of(store, unit, "energy")
    expected = sorted(member.probes["energy"], key=lambda row: (row["step"], f"{row['expert']}.blocks.{row['layer']}"))
    assert [(r["step"], r["layer"]) for r in stored] == [(e["step"], f"{e['expert']}.blocks.{e['layer']}")
                                                        for e in expected]
    assert len(stored) == 4 * 2  # every step, layers 0 and 20 of the expert that ran it
    assert {r["expert"] for r in stored} == {"high", "low"}  # the tiny A14B layout switches experts
    for row, ref in zip(stored, expected):
        assert row["run_id"] == f"{unit.unit_id}-0" and row["layer_index"] == ref["layer"]
        np.testing.assert_allclose(row["value"], ref["energy_mean"], rtol=1e-6)
        np.testing.assert_allclose(row["frame_means"], ref["frame_means"], rtol=1e-6)
        assert row["map_shape"] == list(ref["map"].shape) and len(row["grid"]) == 3
        assert row["map_shape"][0] == row["grid"][0] == 2  # (latent frames, h', w')
        np.testing.assert_allclose(np.reshape(row["map"], row["map_shape"]), ref["map"], rtol=1e-5)
        assert row["fg_bg_ratio"] is not None and row["fg_bg_ratio"] > 0  # generated mazes have a foreground mask
        np.testing.assert_allclose(row["fg_bg_ratio"], ref["fg_bg_ratio"], rtol=1e-5)
        assert row["grid"][1:] == [8, 8]


def test_cka_rows_match_and_noise_at_step_changes_nothing_before_it(probe_sweep, tiny_model):
    units, store = probe_sweep
    unit = units["noise_at_step"]
    member = reference(tiny_model, unit)
    stored = rows_of(store, unit, "cka")
    assert [(r["step"], r["layer"], r["layer_index"]) for r in stored] == [(s, "latents", None) for s in range(4)]
    assert [r["value"] for r in stored[:2]] == [0.0, 0.0]  # before step 2: the clean run, exactly
    assert all(r["value"] > 0 for r in stored[2:])
    np.testing.assert_allclose([r["value"] for r in stored],
                               [row["cka_dissimilarity"] for row in member.probes["sensitivity"]], rtol=1e-6, atol=1e-9)


def test_swap_and_frame_noise_rows(probe_sweep, tiny_model):
    units, store = probe_sweep
    swap = units["swap"]
    member = reference(tiny_model, swap)  # runs B, the clean run, then A
    stored = rows_of(store, swap, "cka")
    np.testing.assert_allclose([r["value"] for r in stored],
                               [row["cka_dissimilarity"] for row in member.probes["sensitivity"]], rtol=1e-6, atol=1e-9)
    assert stored[0]["value"] == 0.0 and stored[-1]["value"] > 0  # the swap acts inside step 0's forward pass
    (run,) = sql(store, f"SELECT params, status FROM runs WHERE unit_id = '{swap.unit_id}'")
    params = json.loads(run["params"])
    assert run["status"] == "ok" and (params["layer"], params["step"]) == (20, 0)
    assert params["source"] == {"folder": str(swap.params["source"]["folder"])}
    # noise at a latent frame perturbs from the first step on
    frame = rows_of(store, units["noise_at_frame"], "cka")
    assert len(frame) == 4 and all(r["value"] > 0 for r in frame)


def test_layers_are_queryable_with_the_runs(probe_sweep):
    units, store = probe_sweep
    counts = sql(store, "SELECT r.method, l.kind, count(*) AS n FROM layers l JOIN runs r USING (run_id) "
                        "GROUP BY 1, 2 ORDER BY 1, 2")
    assert counts == [
        {"method": "baseline", "kind": "energy", "n": 8},  # no clean run to compare a baseline with: no cka
        {"method": "noise_at_frame", "kind": "cka", "n": 4}, {"method": "noise_at_frame", "kind": "energy", "n": 8},
        {"method": "noise_at_step", "kind": "cka", "n": 4}, {"method": "noise_at_step", "kind": "energy", "n": 8},
        {"method": "swap", "kind": "cka", "n": 4}, {"method": "swap", "kind": "energy", "n": 8},
    ]
    steps = sql(store, "SELECT count(*) AS n FROM steps")
    assert steps == [{"n": 4 * 4}]
    # per latent frame: the energy of each frame, unnested
    frames = sql(store, "SELECT f.i - 1 AS frame, avg(f.e) AS energy FROM layers, "
                        "unnest(frame_means) WITH ORDINALITY AS f(e, i) WHERE kind = 'energy' GROUP BY 1 ORDER BY 1")
    assert [row["frame"] for row in frames] == [0, 1]


def test_a_swap_source_that_is_the_task_itself_gives_no_unit():
    """Run B must differ from A: `source: {task: 0}` swaps task 1 with task 0, and gives task 0 no swap with itself."""
    units = units_of(methods=[{"swap": {"layer": 20, "source": {"task": 0}}}])
    assert len(units) == 1 and units[0].task.task_id != units[0].swap_source.task_id
