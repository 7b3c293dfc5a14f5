"""Grids, deterministic unit ids, extension of a spec, the dry run, the JSON Schema and the realistic VBVR job."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.spec.expand import expand
from cos_ray.spec.load import load_spec, validate
from cos_ray.spec.plan import passes_per_run, plan
from cos_ray.spec.schema import spec_schema

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "jobs" / "tasks"
BASE = {
    "model": "tiny",
    "tasks": str(TASKS),
    "seeds": [0, 1],
    "methods": ["baseline", {"ensemble": {"size": 3, "merge": "update"}}],
}


def units_of(data, **kw):
    return expand(validate(data, **kw))


def ids(data, **kw) -> list[str]:
    return [unit.unit_id for unit in units_of(data, **kw)]


def test_grids_expand_to_the_cartesian_product():
    data = copy.deepcopy(BASE)
    data["methods"][1] = {"ensemble": {"steps": {"grid": ["0-10%", "0-20%", "0-50%"]},
                                       "merge": {"grid": ["stream", "update"]}}}
    data["sampler"] = {"guidance": {"grid": [3.0, 5.0]}}
    spec = validate(data)
    assert len(spec.points) == 3 * 2 * 2
    combos = {(p.spec.methods[1].steps, p.spec.methods[1].merge, p.settings.guidance) for p in spec.points}
    assert len(combos) == 12
    assert spec.points[0].choices == {"methods[1].ensemble.steps": 0, "methods[1].ensemble.merge": 0, "sampler.guidance": 0}
    units = expand(spec)
    # per task and seed: baseline x 2 guidances (deduplicated across the 6 ensemble settings) + 12 ensembles
    assert len(units) == 2 * 2 * (2 + 12)
    assert len({unit.unit_id for unit in units}) == len(units)


def test_a_grid_can_stand_for_a_whole_method():
    data = copy.deepcopy(BASE)
    data["methods"] = [{"grid": ["baseline", {"ensemble": {"size": 2}}]}]
    units = units_of(data)
    assert sorted({(u.method, len(u.seeds)) for u in units}) == [("baseline", 1), ("ensemble", 2)]


def test_units_are_one_seed_for_baseline_and_all_members_for_an_ensemble():
    units = units_of(BASE)
    baseline = [u for u in units if u.method == "baseline"]
    ensemble = [u for u in units if u.method == "ensemble"]
    assert {u.seeds for u in baseline} == {(0,), (1,)}
    assert {u.seeds for u in ensemble} == {(0, 1, 2), (1, 2, 3)}
    assert all(u.layout == (3,) for u in ensemble) and all(u.layout == (1,) for u in baseline)
    assert ensemble[0].run_ids == [f"{ensemble[0].unit_id}-{m}" for m in range(3)]
    config = ensemble[0].ensemble
    assert (config.size, config.merge, config.layers) == (3, "update", tuple(range(20, 30)))  # resolved: ints
    assert config.steps == (0, 1)  # 0-20% of the tiny family's 10 steps
    assert baseline[0].ensemble is None


def test_unit_ids_are_deterministic(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    first = [u.unit_id for u in expand(load_spec(path))]
    assert first == [u.unit_id for u in expand(load_spec(path))] == ids(BASE)
    assert all(len(uid) == 16 and int(uid, 16) >= 0 for uid in first)


def _changed(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


RESULT_AFFECTING = {
    "sampler steps": _changed(sampler={"steps": 8}),
    "guidance": _changed(sampler={"guidance": 4.0}),
    "scheduler": _changed(sampler={"scheduler": "euler"}),
    "model": _changed(model="tiny-ti2v"),
    "merge": _changed(methods=["baseline", {"ensemble": {"size": 3, "merge": "stream"}}]),
    "layers": _changed(methods=["baseline", {"ensemble": {"size": 3, "merge": "update", "layers": "20-25"}}]),
    "x0 probes": _changed(probes={"x0": {"every": 1}}),
}


@pytest.mark.parametrize("label", list(RESULT_AFFECTING))
def test_unit_ids_change_with_every_result_affecting_field(label):
    old, new = set(ids(BASE)), ids(RESULT_AFFECTING[label])
    changed_methods = label in ("merge", "layers")
    for unit in units_of(RESULT_AFFECTING[label]):
        if changed_methods and unit.method == "baseline":
            assert unit.unit_id in old  # the baseline did not change
        else:
            assert unit.unit_id not in old, label
    assert len(new) == len(old)


def test_worker_layout_changes_ensemble_ids_only():
    spread = units_of(_changed(model={"name": "tiny", "workers": 3}))
    assert {u.layout for u in spread if u.method == "ensemble"} == {(1, 1, 1)}
    old = set(ids(BASE))
    assert all((u.unit_id in old) == (u.method == "baseline") for u in spread)


def test_version_and_task_content_change_ids(tmp_path, monkeypatch):
    old = set(ids(BASE))
    monkeypatch.setattr("cos_ray.spec.unit.__version__", "9.9.9")
    assert old.isdisjoint(ids(BASE))
    monkeypatch.undo()
    tasks = tmp_path / "tasks"
    shutil.copytree(TASKS, tasks)
    prompt = next(tasks.rglob("prompt.txt"))
    prompt.write_text(prompt.read_text() + " Quickly.")
    assert len(old & set(ids(_changed(tasks=str(tasks))))) == len(old) // 2  # one of the two tasks changed


def test_ids_ignore_store_name_and_folder_location(tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(TASKS, moved)
    assert ids(BASE) == ids(_changed(out=str(tmp_path / "results"), name="renamed", tasks=str(moved)))


def test_equivalent_ranges_give_the_same_unit():
    percent = _changed(methods=[{"ensemble": {"steps": "0-20%", "layers": "20-29"}}])
    explicit = _changed(methods=[{"ensemble": {"steps": "0-1", "layers": list(range(20, 30))}}])
    assert ids(percent) == ids(explicit)  # 20% of the tiny preset's 10 steps is steps 0-1


def test_an_extended_spec_keeps_the_old_units_and_adds_only_new_ones():
    old = units_of(BASE)
    extended = units_of(_changed(seeds=[0, 1, 2, 3]))
    new_ids = [u.unit_id for u in extended]
    assert set(u.unit_id for u in old) <= set(new_ids)
    added = [u for u in extended if u.unit_id not in {o.unit_id for o in old}]
    assert {u.seeds[0] for u in added} == {2, 3} and len(added) == len(old)


def test_dry_run_counts_and_runs_nothing(tmp_path):
    spec = validate(BASE)
    units = expand(spec)
    summary = plan(spec, units)
    assert (summary.units, summary.runs) == (8, 2 * 2 * (1 + 3))
    assert summary.forward_passes == summary.runs * 10 * 2  # 10 steps, CFG on both experts
    out = tmp_path / "results"
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(BASE))
    result = CliRunner().invoke(main, ["plan", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "units: 8 (0 already in the store, 8 to run)" in result.output
    assert "model forward passes (CFG included): 320" in result.output
    assert not out.exists()


def test_dry_run_skips_units_the_store_holds(tmp_path):
    from cos_ray.store.location import Store
    from cos_ray.store.rows import failed_rows, run_row
    from cos_ray.store.write import write_unit

    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(BASE))
    units = expand(load_spec(path))
    store = Store(tmp_path / "results")
    write_unit(store, units[0].unit_id, [run_row(units[0], 0, "s", score=0.5)])
    write_unit(store, units[1].unit_id, failed_rows(units[1], "s", RuntimeError("worker died")))
    result = CliRunner().invoke(main, ["plan", str(path), "--out", str(store.root)])
    assert "units: 8 (1 already in the store, 7 to run)" in result.output  # the failed unit runs again


def test_passes_per_run_counts_cfg():
    from cos_ray.sampler import default_settings

    settings = default_settings("tiny-a14b")
    assert passes_per_run(settings) == 20
    assert passes_per_run(settings.replace(guidance=1.0, guidance_2=1.0)) == 10
    assert 10 < passes_per_run(settings.replace(guidance_2=1.0)) < 20


def test_schema_accepts_the_jobs_and_rejects_unknown_keys():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for job in (ROOT / "jobs").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(job.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**BASE, "seed": 3}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**BASE, "methods": [{"ensemble": {"merge": "mean"}}]}, schema)
    result = CliRunner().invoke(main, ["spec", "schema"])
    assert result.exit_code == 0 and json.loads(result.output)["title"] == "cos-ray sweep spec"


def test_smoke_job_validates():
    spec = load_spec(ROOT / "jobs" / "smoke.yaml")
    units = expand(spec)
    assert spec.model.name == "tiny-reasoner" and {u.method for u in units} == {"first_frame", "baseline", "ensemble"}
    assert {u.task.family for u in units} == {"maze"}  # the trained model's own distribution


def _fake_vbvr_checkpoint(root: Path) -> Path:
    """A diffusers-format A14B directory with real configs and empty weight files (validation reads no weights)."""
    def write(rel, data=None):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data)) if data is not None else path.write_bytes(b"")

    write("model_index.json", {"_class_name": "WanImageToVideoPipeline", "boundary_ratio": 0.875,
                               "transformer": ["diffusers", "WanTransformer3DModel"],
                               "transformer_2": ["diffusers", "WanTransformer3DModel"]})
    write("tokenizer/tokenizer.json", {})
    write("scheduler/scheduler_config.json", {"flow_shift": 5.0})
    write("text_encoder/config.json", {})
    write("text_encoder/pytorch_model.bin")
    write("vae/config.json", {"z_dim": 16, "dim_mult": [1, 2, 4, 4]})
    write("vae/diffusion_pytorch_model.bin")
    for expert in ("transformer", "transformer_2"):
        write(f"{expert}/config.json", {"in_channels": 36, "num_layers": 40, "num_attention_heads": 40,
                                        "attention_head_dim": 128, "ffn_dim": 13824, "patch_size": [1, 2, 2]})
        write(f"{expert}/diffusion_pytorch_model.bin")
    return root


def test_vbvr_job_validates_against_a_checkpoint_and_plans_gpu_hours(tmp_path):
    data = yaml.safe_load((ROOT / "jobs" / "vbvr-wan22.yaml").read_text())
    data["model"]["name"] = str(_fake_vbvr_checkpoint(tmp_path / "VBVR-Wan2.2"))
    data["tasks"] = str(TASKS)
    spec = validate(data)
    assert spec.family == "a14b" and len(spec.points) == 6
    assert spec.points[0].settings.steps == 50 and spec.points[0].settings.boundary == 0.875
    units = expand(spec)
    assert len(units) == 2 * 3 * (1 + 6)
    assert {u.layout for u in units if u.method == "ensemble"} == {(1, 1, 1)}
    assert {u.settings.frames for u in units} == {17}  # the samples' ground-truth count (authors' protocol)
    summary = plan(spec, units)
    assert summary.forward_passes == summary.runs * 100
    # ~420 s per 50-step 81-frame 480p run at 400 TFLOP/s; these samples have 17 frames (5 latent frames, not 21)
    assert 0.01 < summary.gpu_hours / summary.runs < 0.03
    data["methods"][1]["ensemble"]["layers"] = "30-45"
    with pytest.raises(Exception, match=r"methods\[1\]\.ensemble\.layers: '30-45' reaches layer 45, out of range 0-39"):
        validate(data)
