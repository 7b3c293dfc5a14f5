"""LoRA files in the DiffSynth, Kohya, ComfyUI and diffusers conventions apply the same update; none is dropped silently.

The reference is the same LoRA saved by diffusers' own `save_lora_weights`; the other conventions are written by
renaming its tensors to Wan's names (tests/fixtures/wan_original.py), not through cos-ray's loader.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.wan_original import lora_to_comfy, lora_to_diffsynth, lora_to_kohya, write_original_layout

from cos_ray.engine.call import sample
from cos_ray.errors import CheckpointError
from cos_ray.model.lora_conventions import detect_convention
from cos_ray.model.loader import load_pipeline

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]  # every attention and FFN linear


@pytest.fixture(scope="module")
def base_video(tiny_model, task, short_settings):
    return sample(tiny_model, task, short_settings, [0])


@pytest.fixture(scope="module")
def peft_states(preset_cache):
    """{expert: peft LoRA state dict} (rank 4, alpha 4: scale 1) with random A and B, one per expert."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model = load_pipeline("tiny", device="cpu")
    states = {}
    for offset, (expert, module) in enumerate((("transformer", model.pipe.transformer),
                                               ("transformer_2", model.pipe.transformer_2))):
        torch.manual_seed(300 + offset)
        module.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=TARGETS))
        states[expert] = {key: value.detach().clone() * 0.2 for key, value in get_peft_model_state_dict(module).items()}
    return states


def _write(folder, states, convert, suffix):
    from safetensors.torch import save_file

    files = {}
    for expert, state in states.items():
        path = folder / f"{expert}-{suffix}.safetensors"
        save_file(convert(state), str(path))
        files[expert] = path
    return files


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory, peft_states):
    from diffusers import WanImageToVideoPipeline

    folder = tmp_path_factory.mktemp("loras")
    files = {"diffusers": {}}
    for expert, state in peft_states.items():
        name = f"{expert}-diffusers.safetensors"
        WanImageToVideoPipeline.save_lora_weights(folder, transformer_lora_layers=state, weight_name=name)
        files["diffusers"][expert] = folder / name
    files["diffsynth"] = _write(folder, peft_states, lora_to_diffsynth, "diffsynth")
    files["kohya"] = _write(folder, peft_states, lambda s: lora_to_kohya(s, alpha=2.0), "kohya")
    files["comfy"] = _write(folder, peft_states, lora_to_comfy, "comfy")
    return files


@pytest.fixture(scope="module")
def reference_lora_video(lora_files, task, short_settings):
    return sample(load_pipeline("tiny", device="cpu", lora=lora_files["diffusers"]), task, short_settings, [0])


@pytest.mark.parametrize("convention", ["diffusers", "diffsynth", "kohya", "comfy"])
def test_every_convention_applies_the_same_lora(convention, lora_files, reference_lora_video, base_video, task,
                                                short_settings):
    from safetensors import safe_open

    with safe_open(str(lora_files[convention]["transformer"]), framework="pt") as handle:
        assert detect_convention(handle.keys()) == convention
    model = load_pipeline("tiny", device="cpu", lora=lora_files[convention])
    for expert, record in model.lora_records.items():
        assert record["convention"] == convention
        assert record["layers_injected"] == record["pairs"] == 40 * 10  # 40 blocks x (8 attention + 2 FFN) linears
    video = sample(model, task, short_settings, [0])
    assert np.abs(video - reference_lora_video).max() < 1e-5
    assert np.abs(video - base_video).max() > 1e-2  # the LoRA does change the video


def test_diffsynth_pair_on_the_original_layout(lora_files, tmp_path, task, short_settings):
    """The paper's route: Wan2.2-I2V-A14B in its original layout + the DiffSynth high/low LoRA pair."""
    import torch

    source = load_pipeline("tiny", device="cpu")
    root = write_original_layout(source.pipe, tmp_path / "orig")
    model = load_pipeline(root, device="cpu", lora=lora_files["diffsynth"])
    reference = load_pipeline("tiny", device="cpu", lora=lora_files["diffusers"])
    with torch.no_grad():  # the original layout's T5 is bf16 on disk
        for parameter in reference.pipe.text_encoder.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).to(torch.float32))
    video = sample(model, task, short_settings, [0])
    assert np.abs(video - sample(reference, task, short_settings, [0])).max() < 1e-5


def test_fused_equals_unfused(lora_files, reference_lora_video, task, short_settings):
    from peft.tuners.lora import LoraLayer

    model = load_pipeline("tiny", device="cpu", lora=lora_files["diffsynth"], fuse_lora=True)
    assert not any(isinstance(m, LoraLayer) for m in model.pipe.transformer.modules())  # merged, no per-step cost
    assert all(record["fused"] and record["layers_injected"] == 400 for record in model.lora_records.values())
    video = sample(model, task, short_settings, [0])
    assert np.abs(video - reference_lora_video).max() < 1e-5


def test_scale_zero_is_the_base_model(lora_files, base_video, task, short_settings):
    model = load_pipeline("tiny", device="cpu", lora=lora_files["kohya"], lora_scale=0.0)
    assert model.lora_records["transformer"]["scale"] == 0.0
    assert np.abs(sample(model, task, short_settings, [0]) - base_video).max() < 1e-5


def _renamed(path, tmp_path, old, new):
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    renamed = {key.replace(old, new): value for key, value in state.items()}
    assert renamed != state
    target = tmp_path / f"renamed-{path.name}"
    save_file(renamed, str(target))
    return target


@pytest.mark.parametrize("convention, old, new, named", [
    ("diffsynth", "blocks.3.self_attn.q.", "blocks.3.self_attn.qq.", "blocks.3.self_attn.qq.lora_A.default.weight"),
    ("diffusers", "blocks.3.attn1.to_q.", "blocks.3.attn1.to_qq.", "transformer.blocks.3.attn1.to_qq"),
    ("comfy", "blocks.3.cross_attn.k.", "blocks.3.cross_attn.kk.", "diffusion_model.blocks.3.cross_attn.kk.lora_A"),
])
def test_a_lora_with_one_renamed_key_is_refused_naming_file_and_key(convention, old, new, named, lora_files,
                                                                    tmp_path):
    bad = _renamed(lora_files[convention]["transformer_2"], tmp_path, old, new)
    with pytest.raises(CheckpointError) as caught:
        load_pipeline("tiny", device="cpu", lora={"transformer_2": bad})
    message = str(caught.value)
    assert str(bad) in message and f"{convention} convention detected" in message
    assert named in message  # the unmatched key, as the file spells it


def test_a_lora_matching_no_module_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "other-model.safetensors"
    save_file({"transformer.unet.down.0.proj.lora_A.weight": torch.zeros(4, 16),
               "transformer.unet.down.0.proj.lora_B.weight": torch.zeros(16, 4)}, str(bad))
    with pytest.raises(CheckpointError, match=r"other-model.safetensors: diffusers convention detected.*"
                                              r"unet.down.0.proj"):
        load_pipeline("tiny", device="cpu", lora={"transformer": bad})


def test_a_file_without_lora_pairs_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "weights.safetensors"
    save_file({"blocks.0.self_attn.q.weight": torch.zeros(4, 4)}, str(bad))
    with pytest.raises(CheckpointError, match=r"weights.safetensors: .*no LoRA A/B \(down/up\) pairs"):
        load_pipeline("tiny", device="cpu", lora={"transformer": bad})


def test_a_sweep_with_a_lora_pair_records_its_layers_in_every_unit(lora_files, tmp_path):
    """spec model.lora {high, low, scale} -> every unit's model identity names convention, layers injected, scale."""
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    spec_path = tmp_path / "lora.yaml"
    spec_path.write_text(
        "name: lora\n"
        f"model: {{name: tiny, lora: {{high: {lora_files['diffsynth']['transformer']}, "
        f"low: {lora_files['kohya']['transformer_2']}, scale: 0.5}}}}\n"
        "tasks: {generate: {family: maze, n: 1, seed: 0}}\nseeds: [1]\nsampler: {steps: 2, frames: 5}\n"
        "methods: [baseline]\n"
    )
    spec = load_spec(str(spec_path))
    assert spec.model.lora_files() == {"transformer": str(lora_files["diffsynth"]["transformer"]),
                                       "transformer_2": str(lora_files["kohya"]["transformer_2"])}
    units = expand(spec)
    lora = units[0].identity["model"]["lora"]
    assert lora["transformer"]["convention"] == "diffsynth" and lora["transformer_2"]["convention"] == "kohya"
    assert lora["transformer"]["layers_injected"] == lora["transformer_2"]["layers_injected"] == 400
    assert lora["transformer"]["scale"] == 0.5
    # the worker loads the same mapping and checks the count (a LoRA that applied nothing never produces a row)
    model = load_pipeline("tiny", device="cpu", lora=spec.model.lora)
    assert {e: r["layers_injected"] for e, r in model.lora_records.items()} == {"transformer": 400,
                                                                               "transformer_2": 400}


def test_a_spec_lora_with_an_unknown_key_is_refused(tmp_path):
    from cos_ray.errors import UsageError
    from cos_ray.spec.load import load_spec

    spec_path = tmp_path / "bad.yaml"
    spec_path.write_text("name: bad\nmodel: {name: tiny, lora: {middle: x.safetensors}}\n"
                         "tasks: {generate: {family: maze, n: 1, seed: 0}}\nseeds: [1]\nmethods: [baseline]\n")
    with pytest.raises(UsageError, match=r"model.lora.middle: expected an expert \(high, low"):
        load_spec(str(spec_path))


def test_a_kohya_lora_of_another_model_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "sdxl-style.safetensors"
    name = "lora_unet_down_blocks_0_attentions_0_proj_in"
    save_file({f"{name}.lora_down.weight": torch.zeros(4, 8), f"{name}.lora_up.weight": torch.zeros(8, 4),
               f"{name}.alpha": torch.tensor(4.0)}, str(bad))
    with pytest.raises(CheckpointError, match=r"sdxl-style.safetensors: kohya convention detected; .*another model.*"
                                              r"lora_unet_down_blocks_0_attentions_0_proj_in"):
        load_pipeline("tiny", device="cpu", lora={"transformer": bad})


def test_fused_equals_unfused_at_a_scale(lora_files, task, short_settings):
    unfused = load_pipeline("tiny", device="cpu", lora=lora_files["comfy"], lora_scale=0.5)
    fused = load_pipeline("tiny", device="cpu", lora={**lora_files["comfy"], "scale": 0.5, "fuse": True})
    assert fused.lora_records["transformer"]["fused"] and fused.lora_records["transformer"]["scale"] == 0.5
    assert np.abs(sample(fused, task, short_settings, [0]) - sample(unfused, task, short_settings, [0])).max() < 1e-5
