"""`cos-ray generate --model ORIGINAL_LAYOUT_DIR --lora-high H --lora-low L`, end to end, and its bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fixtures.wan_original import lora_to_diffsynth, write_original_layout


@pytest.fixture(scope="module")
def paper_route(tmp_path_factory, preset_cache):
    """The paper's README route in tiny: the original Wan layout and a DiffSynth high/low LoRA pair."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from cos_ray.model.loader import load_pipeline

    folder = tmp_path_factory.mktemp("paper-route")
    source = load_pipeline("tiny", device="cpu")
    root = write_original_layout(source.pipe, folder / "Wan2.2-I2V-A14B")
    files = {}
    for offset, (name, module) in enumerate((("high", source.pipe.transformer), ("low", source.pipe.transformer_2))):
        torch.manual_seed(500 + offset)
        module.add_adapter(LoraConfig(r=2, lora_alpha=2, init_lora_weights=False, target_modules=["to_q", "ffn.net.2"]))
        files[name] = folder / f"{name}_noise_lora.safetensors"
        save_file(lora_to_diffsynth(get_peft_model_state_dict(module)), str(files[name]))
    return root, files


def _generate(*args, timeout=240):
    env = {**os.environ, "COS_RAY_CPU_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "cos_ray.cli", "generate", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_generate_from_the_original_layout_with_the_diffsynth_pair(paper_route, task_dir, tmp_path):
    root, files = paper_route
    out = tmp_path / "out"
    result = _generate(task_dir, "--model", root, "--lora-high", files["high"], "--lora-low", files["low"],
                       "--steps", 2, "--frames", 5, "--height", 32, "--width", 32, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "original Wan layout" in result.stderr
    assert "diffsynth convention, 120 layers injected" in result.stderr  # 40 blocks x (attn1.to_q, attn2.to_q, ffn)
    record = json.loads((out / "settings.json").read_text())
    assert record["layout"] == "wan-original"
    for expert in ("transformer", "transformer_2"):
        applied = record["lora_applied"][expert]
        assert applied["convention"] == "diffsynth" and applied["layers_injected"] > 0
        assert applied["layers_injected"] == applied["pairs"]


def test_bad_inputs_exit_2_without_a_traceback(paper_route, task_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    root, files = paper_route
    renamed = tmp_path / "renamed.safetensors"
    state = load_file(str(files["low"]))
    save_file({key.replace("blocks.7.self_attn.q.", "blocks.7.self_attn.query."): v for key, v in state.items()},
              str(renamed))
    cases = [
        (("--model", root, "--lora-low", renamed), "blocks.7.self_attn.query.lora_A.default.weight"),
        (("--model", root, "--lora-high", tmp_path / "missing.safetensors"), "does not exist"),
        (("--model", tmp_path, "--lora-high", files["high"]), "no Wan2.2 checkpoint layout found"),
        (("--model", "tiny", "--lora", files["high"], "--lora-high", files["high"]), "give one"),
    ]
    for args, expected in cases:
        result = _generate(task_dir, *args, "--steps", 1, "--frames", 5, "--out", tmp_path / "bad")
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
