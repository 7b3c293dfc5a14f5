"""Model identity: stable for the same files, different when a config, a weight layout or a LoRA changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from cos_ray.model.identity import model_identity
from cos_ray.model.source import model_directory


def test_identity_tracks_configs_weights_and_lora(tmp_path, preset_cache):
    copy = tmp_path / "ckpt"
    shutil.copytree(model_directory("tiny"), copy)
    first = model_identity(copy)
    assert first == model_identity(copy) and first["lora"] == {}

    config_path = copy / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config["flow_shift"] = 3.0
    config_path.write_text(json.dumps(config))
    assert model_identity(copy)["hash"] != first["hash"]

    import torch
    from safetensors.torch import save_file

    lora = tmp_path / "high.safetensors"
    pair = {"blocks.0.self_attn.q.lora_A.default.weight": torch.ones(4, 16),
            "blocks.0.self_attn.q.lora_B.default.weight": torch.ones(16, 4)}
    save_file(pair, str(lora))
    with_lora = model_identity(copy, {"high": lora, "scale": 0.5})
    assert with_lora["lora"]["transformer"]["convention"] == "diffsynth"
    assert with_lora["lora"]["transformer"]["layers_injected"] == 1 and with_lora["lora"]["transformer"]["scale"] == 0.5
    save_file({key: value * 2 for key, value in pair.items()}, str(lora))
    assert model_identity(copy, {"high": lora, "scale": 0.5})["lora"] != with_lora["lora"]


def test_preset_identity_needs_no_torch(preset_cache):
    code = ("import sys; from cos_ray.model.identity import model_identity; i = model_identity('tiny'); "
            "assert i['hash'].startswith('preset-'), i; "
            "print(','.join(m for m in ('torch', 'diffusers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
