"""Production shapes without weights: bytes per expert, what fits on which GPUs, and the plan's refusal.

The parameter formula is checked against meta-device models of the published configs (tests/fixtures/published.py);
the plan runs on a shape-only A14B checkpoint (real tensor names and shapes, no data).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from fixtures.published import A14B_TRANSFORMER, TI2V_5B_TRANSFORMER, UMT5_XXL_ENCODER, meta_transformer

from cos_ray.model.memory import (GIB, WAN21_VAE_PARAMETERS, fit_table, transformer_parameters, umt5_parameters,
                                  worker_memory)


@pytest.mark.parametrize("config, billions", [(A14B_TRANSFORMER, 14.289), (TI2V_5B_TRANSFORMER, 5.000)],
                         ids=["A14B", "TI2V-5B"])
def test_parameters_per_expert_match_the_meta_model(config, billions):
    model = meta_transformer(config)
    counted = sum(parameter.numel() for parameter in model.parameters())
    assert transformer_parameters(config) == counted
    assert abs(counted / 1e9 - billions) < 1e-3


def test_text_encoder_and_vae_sizes_match_the_meta_models():
    import torch
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        text = UMT5EncoderModel(UMT5Config(**UMT5_XXL_ENCODER))
    assert umt5_parameters(UMT5_XXL_ENCODER) == sum(p.numel() for p in text.parameters())
    with init_empty_weights():
        vae = AutoencoderKLWan()
    assert WAN21_VAE_PARAMETERS == sum(p.numel() for p in vae.parameters())


def test_a14b_expert_is_26_6_gib_in_bf16_and_accelerate_agrees_where_it_fits():
    """accelerate's device map of one meta A14B expert spills off the GPU exactly when our byte count says it must."""
    import torch
    from accelerate import infer_auto_device_map

    expert_gib = transformer_parameters(A14B_TRANSFORMER) * 2 / GIB
    assert abs(expert_gib - 26.615) < 0.01
    model = meta_transformer(A14B_TRANSFORMER)
    for budget, spills in ((expert_gib * 1.02, False), (expert_gib * 0.9, True)):
        plan = infer_auto_device_map(model, max_memory={0: f"{budget:.2f}GiB", "cpu": "1000GiB"},
                                     no_split_module_classes=["WanTransformerBlock"], dtype=torch.bfloat16)
        assert ("cpu" in plan.values()) == spills, (budget, set(plan.values()))


def test_fit_table_for_the_published_a14b():
    """Both experts + UMT5-XXL + VAE + activations of 81 x 480 x 832 with CFG: where they fit."""
    table = fit_table(A14B_TRANSFORMER)
    memory = worker_memory(A14B_TRANSFORMER, 2, 81, 480, 832, 1, 1)
    assert memory.tokens == 21 * 30 * 52  # ((81 - 1) / 4 + 1) * (480 / 16) * (832 / 16)
    assert table[(1, 141)] and not table[(1, 80)] and table[(2, 80)]
    assert not table[(8, 24)]  # the text encoder and activations alone crowd out a 24 GB card
    assert all(table[(gpus, 141)] for gpus in (1, 2, 4, 8))


def _spec(folder, checkpoint, gpus, gpu_gib, workers=3, offload=False):
    path = folder / f"a14b-{gpus}-{gpu_gib}.yaml"
    path.write_text(
        f"name: a14b\n"
        f"model: {{name: {checkpoint}, workers: {workers}, gpus_per_worker: {gpus}, gpu_memory_gib: {gpu_gib},"
        f" offload: {str(offload).lower()}}}\n"
        "tasks: {generate: {family: maze, n: 1, seed: 0}}\n"
        "seeds: [1]\n"
        "sampler: {frames: 81, height: 480, width: 832}\n"
        "methods:\n  - ensemble: {size: 3, layers: 20-29, steps: 0-9, merge: update}\n"
    )
    return path


@pytest.fixture(scope="module")
def shape_only_a14b(tmp_path_factory):
    from fixtures.published import write_shape_only_a14b

    return write_shape_only_a14b(tmp_path_factory.mktemp("a14b") / "Wan2.2-I2V-A14B-Diffusers")


def _plan(spec):
    return subprocess.run([sys.executable, "-m", "cos_ray.cli", "plan", str(spec), "--out", str(spec.parent / "results")],
                          capture_output=True, text=True, timeout=120)


def test_plan_prints_per_worker_memory_of_the_real_a14b_shape(shape_only_a14b, tmp_path):
    result = _plan(_spec(tmp_path, shape_only_a14b, gpus=2, gpu_gib=80))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "memory per worker (81 frames of 480x832, 1 seed(s) per worker)" in out
    assert "experts 53.2 GiB (bf16, sharded over 2 GPU(s))" in out and "text encoder 10.6 GiB" in out
    assert "32,760 tokens" in out and "verdict: fits" in out


def test_plan_refuses_a_layout_that_cannot_fit(shape_only_a14b, tmp_path):
    result = _plan(_spec(tmp_path, shape_only_a14b, gpus=1, gpu_gib=48))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "cannot fit" in result.stderr and "48 GiB per GPU" in result.stderr
    assert "would fit: gpus_per_worker: 4" in result.stderr and "offload: true" in result.stderr
    assert "Traceback" not in result.stderr


def test_submit_refuses_before_submitting(shape_only_a14b, tmp_path):
    spec = _spec(tmp_path, shape_only_a14b, gpus=2, gpu_gib=24)
    result = subprocess.run([sys.executable, "-m", "cos_ray.cli", "submit", str(spec), "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                               "RAY_ADDRESS": "http://127.0.0.1:1"})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "cannot fit" in result.stderr and "24 GiB per GPU" in result.stderr
    assert not (tmp_path / "r").exists()
