"""A sweep with a LoRA pair on Ray workers: rows record what the LoRA did; a LoRA that would apply nothing makes none."""

from __future__ import annotations

import json

import pytest
from fixtures.wan_original import lora_to_diffsynth

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def diffsynth_pair(tmp_path_factory, preset_cache):
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from cos_ray.model.loader import load_pipeline

    folder = tmp_path_factory.mktemp("pair")
    source = load_pipeline("tiny", device="cpu")
    files = {}
    for offset, (name, module) in enumerate((("high", source.pipe.transformer), ("low", source.pipe.transformer_2))):
        torch.manual_seed(700 + offset)
        module.add_adapter(LoraConfig(r=2, lora_alpha=2, init_lora_weights=False, target_modules=["to_q"]))
        files[name] = folder / f"{name}_noise_lora.safetensors"
        save_file(lora_to_diffsynth(get_peft_model_state_dict(module)), str(files[name]))
    return files


def _spec(folder, high, low):
    path = folder / "lora-sweep.yaml"
    path.write_text(
        "name: lora-sweep\n"
        f"model: {{name: tiny, lora: {{high: {high}, low: {low}}}}}\n"
        "tasks: {generate: {family: maze, n: 1, seed: 0}}\nseeds: [1]\nsampler: {steps: 2, frames: 5}\n"
        "methods: [baseline]\n"
    )
    return path


def test_rows_of_a_lora_sweep_record_its_layers(ray_cluster, diffsynth_pair, tmp_path):
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.runner import run_sweep

    report = run_sweep(str(_spec(tmp_path, diffsynth_pair["high"], diffsynth_pair["low"])), str(tmp_path / "store"),
                       progress=False, retries=0)
    assert report.status == "done", report
    rows = run_sql(Store(str(tmp_path / "store")), "select status, model_identity from runs").to_pylist()
    assert rows and all(row["status"] == "ok" for row in rows)
    for row in rows:
        lora = json.loads(row["model_identity"])["lora"]
        assert lora["transformer"]["convention"] == lora["transformer_2"]["convention"] == "diffsynth"
        assert lora["transformer"]["layers_injected"] == lora["transformer_2"]["layers_injected"] == 80  # 40 x 2 to_q


def test_a_lora_that_cannot_apply_reaches_no_row(ray_cluster, diffsynth_pair, tmp_path):
    from safetensors.torch import load_file, save_file

    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.runner import run_sweep

    renamed = tmp_path / "renamed.safetensors"
    state = load_file(str(diffsynth_pair["low"]))
    save_file({key.replace("blocks.5.self_attn.q.", "blocks.5.self_attn.query."): v for key, v in state.items()},
              str(renamed))
    store = tmp_path / "store"
    from cos_ray.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"renamed.safetensors: diffsynth convention detected.*"
                                              r"blocks.5.self_attn.query.lora_A.default.weight"):
        run_sweep(str(_spec(tmp_path, diffsynth_pair["high"], renamed)), str(store), progress=False, retries=0)
    if (store / "runs" / "_delta_log").is_dir():
        ok = run_sql(Store(str(store)), "select count(*) as n from runs where status = 'ok'").to_pylist()
        assert ok[0]["n"] == 0


def test_a_sweep_over_comfyui_single_file_experts(ray_cluster, tmp_path):
    """spec model.experts {high, low} over an original-layout base: workers load the single files."""
    from fixtures.wan_original import write_comfy_file, write_original_layout

    from cos_ray.model.loader import load_pipeline
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.runner import run_sweep

    source = load_pipeline("tiny", device="cpu")
    base = write_original_layout(source.pipe, tmp_path / "base")
    high = write_comfy_file(source.pipe.transformer, tmp_path / "high.safetensors", prefix=True)
    low = write_comfy_file(source.pipe.transformer_2, tmp_path / "low.safetensors", prefix=False)
    spec = tmp_path / "comfy.yaml"
    spec.write_text(
        f"name: comfy\nmodel: {{name: {base}, experts: {{high: {high}, low: {low}}}}}\n"
        "tasks: {generate: {family: maze, n: 1, seed: 0}}\nseeds: [1]\n"
        "sampler: {steps: 2, frames: 5, height: 32, width: 32}\nmethods: [baseline]\n"
    )
    report = run_sweep(str(spec), str(tmp_path / "store"), progress=False, retries=0)
    assert report.status == "done", report
    rows = run_sql(Store(str(tmp_path / "store")), "select status, model_identity from runs").to_pylist()
    assert rows and all(row["status"] == "ok" for row in rows)
    assert all(json.loads(row["model_identity"])["layout"] == "comfy" for row in rows)
