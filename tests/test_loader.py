"""The loader: presets go through it like real checkpoints; malformed directories fail clearly before loading."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cos_ray.engine.call import sample
from cos_ray.errors import CheckpointError
from cos_ray.model.checkpoint import inspect_checkpoint
from cos_ray.model.loader import load_pipeline
from cos_ray.model.source import model_directory


def test_tiny_preset_is_a14b_shaped_and_runs(tiny_model, task, tiny_settings):
    layout = tiny_model.layout
    assert layout.family == "a14b" and layout.experts == ("transformer", "transformer_2")
    assert layout.boundary_ratio == 0.875
    for expert in tiny_model.experts().values():
        assert len(expert.blocks) == 40 and expert.config.in_channels == 36
        assert not expert.training
    assert not tiny_model.pipe.text_encoder.training and not tiny_model.pipe.vae.training
    videos = sample(tiny_model, task, tiny_settings, [0])
    assert videos.shape == (1, 9, 64, 64, 3)
    assert np.isfinite(videos).all() and videos.std() > 0


def test_two_identical_runs_are_bit_identical(tiny_model, task, tiny_settings):
    first = sample(tiny_model, task, tiny_settings, [7])
    second = sample(tiny_model, task, tiny_settings, [7])
    other_seed = sample(tiny_model, task, tiny_settings, [8])
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other_seed)


def test_ti2v_layout_runs_with_expand_timesteps(preset_cache, task):
    from cos_ray.sampler import default_settings

    model = load_pipeline("tiny-ti2v", device="cpu")
    assert model.layout.family == "ti2v" and model.layout.expand_timesteps
    assert model.pipe.transformer_2 is None and model.pipe.transformer.config.in_channels == 48
    videos = sample(model, task, default_settings("tiny-ti2v"), [0])
    assert videos.shape == (1, 9, 64, 64, 3) and np.isfinite(videos).all()


@pytest.fixture()
def broken_copy(tmp_path, preset_cache):
    """A fresh copy of the tiny preset's directory to damage."""
    target = tmp_path / "ckpt"
    shutil.copytree(model_directory("tiny"), target)
    return target


def test_missing_transformer_2_is_named(broken_copy):
    shutil.rmtree(broken_copy / "transformer_2")
    with pytest.raises(CheckpointError, match=r"transformer_2: missing component folder"):
        load_pipeline(broken_copy, device="cpu")


def test_missing_weights_are_named(broken_copy):
    (broken_copy / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"transformer: no weights in .*diffusion_pytorch_model.safetensors"):
        load_pipeline(broken_copy, device="cpu")


def test_missing_shard_is_named(broken_copy):
    folder = broken_copy / "transformer_2"
    (folder / "diffusion_pytorch_model.safetensors").rename(folder / "part-00001.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "part-00001.safetensors", "b": "part-00002.safetensors"}}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"transformer_2: shard\(s\) .* missing: part-00002.safetensors"):
        inspect_checkpoint(broken_copy)


def test_broken_config_is_named(broken_copy):
    (broken_copy / "vae" / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match=r"vae: .*config.json is not valid JSON"):
        load_pipeline(broken_copy, device="cpu")


def test_wrong_input_channels_are_named(broken_copy):
    config_path = broken_copy / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    config["in_channels"] = 16
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"transformer: config.json has in_channels=16, expected 36"):
        inspect_checkpoint(broken_copy)


def test_missing_directory_and_index_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pipeline(tmp_path / "nowhere", device="cpu")
    with pytest.raises(CheckpointError, match="no Wan2.2 checkpoint layout found. Looked for: model_index.json"):
        inspect_checkpoint(tmp_path)


def test_lora_per_expert_round_trips_and_changes_output(tmp_path, preset_cache, task, tiny_settings):
    import torch
    from diffusers import WanImageToVideoPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    base = sample(load_pipeline("tiny", device="cpu"), task, tiny_settings, [0])
    adapted = load_pipeline("tiny", device="cpu")
    files = {}
    for offset, (expert, module) in enumerate(adapted.experts().items()):
        torch.manual_seed(100 + offset)
        module.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                      target_modules=["attn1.to_q", "attn1.to_v", "ffn.net.2"]))
        name = f"{expert}.safetensors"
        WanImageToVideoPipeline.save_lora_weights(
            tmp_path, transformer_lora_layers=get_peft_model_state_dict(module), weight_name=name
        )
        files["transformer" if expert == "high" else "transformer_2"] = tmp_path / name
    in_memory = sample(adapted, task, tiny_settings, [0])

    loaded = load_pipeline("tiny", device="cpu", lora=files)
    assert set(loaded.lora) == {"transformer", "transformer_2"}
    round_tripped = sample(loaded, task, tiny_settings, [0])
    assert np.abs(round_tripped - in_memory).max() < 1e-4
    assert np.abs(round_tripped - base).max() > 1e-3

    with pytest.raises(CheckpointError, match=r"lora.transformer_2: file .* does not exist"):
        load_pipeline("tiny", device="cpu", lora={"transformer_2": tmp_path / "missing.safetensors"})
