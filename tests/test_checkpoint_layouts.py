"""Checkpoints as users download them load and give the same video as the diffusers-format tiny preset.

The fixtures (tests/fixtures/wan_original.py) rename the preset's own tensors to Wan's key names without cos-ray's
loader; the reference is the preset loaded from its diffusers-format directory. The original layout's T5 is bf16 on
disk (as published), so the reference's text encoder is rounded to bf16 the same way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from fixtures.wan_original import write_comfy_file, write_original_layout

from cos_ray.engine.call import sample
from cos_ray.errors import CheckpointError
from cos_ray.model.checkpoint import inspect_checkpoint
from cos_ray.model.loader import load_pipeline


@pytest.fixture(scope="module")
def reference(preset_cache):
    """The tiny preset (diffusers format) with its text encoder rounded to bf16, like the original layout's .pth."""
    import torch

    model = load_pipeline("tiny", device="cpu")
    with torch.no_grad():
        for parameter in model.pipe.text_encoder.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).to(torch.float32))
    return model


@pytest.fixture(scope="module")
def original_dir(tmp_path_factory, preset_cache):
    source = load_pipeline("tiny", device="cpu")
    return write_original_layout(source.pipe, tmp_path_factory.mktemp("wan-original") / "Wan2.2-I2V-A14B", shards=3)


@pytest.fixture(scope="module")
def reference_video(reference, task, short_settings):
    return sample(reference, task, short_settings, [0])


def test_original_layout_is_detected_and_gives_the_same_video(original_dir, reference_video, task, short_settings):
    layout = inspect_checkpoint(original_dir)
    assert layout.format == "wan-original" and layout.family == "a14b"
    assert layout.experts == ("transformer", "transformer_2")
    assert "original Wan layout" in layout.describe() and "high_noise_model/" in layout.describe()
    assert len(json.loads((original_dir / "high_noise_model" / "diffusion_pytorch_model.safetensors.index.json")
                          .read_text())["weight_map"]) > 0
    model = load_pipeline(original_dir, device="cpu")
    assert model.pipe.transformer.config.text_dim == 32  # read from the weights: the WanModel config has no text_dim
    video = sample(model, task, short_settings, [0])
    assert video.shape == reference_video.shape
    assert np.abs(video - reference_video).max() < 1e-5


@pytest.mark.parametrize("prefix", [True, False], ids=["model.diffusion_model.", "no-prefix"])
def test_comfy_single_files_over_the_original_base_give_the_same_video(
    prefix, original_dir, tmp_path, reference, reference_video, task, short_settings
):
    files = {
        "transformer": write_comfy_file(reference.pipe.transformer, tmp_path / "high.safetensors", prefix=prefix),
        "transformer_2": write_comfy_file(reference.pipe.transformer_2, tmp_path / "low.safetensors", prefix=prefix),
    }
    model = load_pipeline(original_dir, device="cpu", experts=files)
    assert model.layout.format == "comfy" and model.layout.base_format == "wan-original"
    assert "ComfyUI single-file experts" in model.layout.describe()
    video = sample(model, task, short_settings, [0])
    assert np.abs(video - reference_video).max() < 1e-5


def test_a_directory_of_no_known_layout_names_what_was_looked_for(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"0")
    with pytest.raises(CheckpointError, match=r"no Wan2.2 checkpoint layout found. Looked for: model_index.json.*"
                                              r"high_noise_model/"):
        inspect_checkpoint(tmp_path)


@pytest.fixture()
def damaged_original(original_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(original_dir, target)
    return target


def test_original_layout_problems_are_named_together(damaged_original):
    (damaged_original / "Wan2.1_VAE.pth").unlink()
    shutil.rmtree(damaged_original / "google")
    with pytest.raises(CheckpointError, match=r"original Wan layout.*vae: missing Wan2.1_VAE.pth.*tokenizer: none of"):
        inspect_checkpoint(damaged_original)


def test_a_missing_shard_is_named(damaged_original):
    shard = sorted((damaged_original / "low_noise_model").glob("*-00002-of-00003.safetensors"))[0]
    shard.unlink()
    with pytest.raises(CheckpointError, match=r"low_noise_model: shard\(s\) listed .* missing: .*00002-of-00003"):
        inspect_checkpoint(damaged_original)


def test_a_config_that_is_not_wanmodel_is_named(damaged_original):
    path = damaged_original / "high_noise_model" / "config.json"
    path.write_text(json.dumps({"_class_name": "WanTransformer3DModel"}))
    with pytest.raises(CheckpointError, match=r"high_noise_model: .*config.json should have _class_name WanModel"):
        inspect_checkpoint(damaged_original)


@pytest.mark.parametrize("target", ["config", "index", "header"])
def test_a_deeply_nested_config_index_or_header_is_one_line(damaged_original, tmp_path, target):
    """JSON nested 3,000 deep where the loader reads a config, a weight index or a safetensors header (a recursion
    error before): `cos-ray spec check` on a spec naming the checkpoint exits 2 with one line naming the file."""
    import struct

    deep = "[" * 3000 + "]" * 3000
    expert = damaged_original / "high_noise_model"
    if target == "config":
        victim = expert / "config.json"
        victim.write_text(deep)
    elif target == "index":
        victim = next(expert.glob("*.safetensors.index.json"))
        victim.write_text(deep)
    else:
        victim = sorted(expert.glob("*.safetensors"))[0]
        data = victim.read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        victim.write_bytes(struct.pack("<Q", len(deep)) + deep.encode() + data[8 + length:])
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: deep\nmodel: '{damaged_original}'\ntasks: {{generate: {{family: maze, n: 1}}}}\n"
                    "seeds: [0]\nmethods: [baseline]\n")
    result = subprocess.run([sys.executable, "-m", "cos_ray.cli", "spec", "check", str(spec)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert str(victim) in result.stderr and "nested deeper than 32 levels" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # "1 problem(s) in spec" + the line


def test_comfy_file_that_is_not_a_wan_transformer_is_named(original_dir, tmp_path):
    from safetensors.torch import save_file
    import torch

    bogus = tmp_path / "bogus.safetensors"
    save_file({"unet.conv_in.weight": torch.zeros(2, 2)}, str(bogus))
    with pytest.raises(CheckpointError, match=r"transformer \(bogus.safetensors\): no tensor 'patch_embedding.weight'"):
        inspect_checkpoint(original_dir, experts={"transformer": bogus, "transformer_2": bogus})


def test_convert_writes_the_same_tensors_the_loader_reads(original_dir, tmp_path):
    """`cos-ray convert` (original layout -> diffusers bf16) and loading the original directly give identical tensors."""
    import subprocess
    import sys

    import torch

    target = tmp_path / "converted"
    result = subprocess.run([sys.executable, "-m", "cos_ray.cli", "convert", str(original_dir), str(target)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "original Wan layout" in result.stdout
    assert inspect_checkpoint(target).format == "diffusers"
    direct = load_pipeline(original_dir, device="cpu", dtype=torch.bfloat16)
    converted = load_pipeline(target, device="cpu", dtype=torch.bfloat16)
    for name in ("transformer", "transformer_2", "text_encoder", "vae"):
        ours, theirs = getattr(direct.pipe, name).state_dict(), getattr(converted.pipe, name).state_dict()
        assert set(ours) == set(theirs), name
        assert all(torch.equal(ours[key], theirs[key]) for key in ours), name
    again = subprocess.run([sys.executable, "-m", "cos_ray.cli", "convert", str(original_dir), str(target)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr


def test_original_layout_sharded_by_device_maps_runs_like_the_unsharded_one(original_dir, reference_video, task,
                                                                            short_settings):
    """The worker's sharded path: device maps computed from the layout's own configs, experts dispatched over them."""
    import torch

    from cos_ray.model.sharding import sharded_device_maps

    maps = sharded_device_maps(original_dir, ("transformer", "transformer_2"), ["cpu", "cpu"], torch.float32)
    assert all(any(name.startswith("blocks.") for name in plan) for plan in maps.values())
    model = load_pipeline(original_dir, device="cpu", device_map=maps)
    assert np.abs(sample(model, task, short_settings, [0]) - reference_video).max() < 1e-5
