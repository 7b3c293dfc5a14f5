"""Step-distilled Wan2.2 (Wan2.2-Lightning / lightx2v): its LoRA files are named, counted and applied at alpha / rank.

The fixtures are written here from the key names the Lightning release publishes
(`diffusion_model.blocks.N.self_attn.q.lora_down.weight` / `lora_up.weight` + `alpha`, fp32, one file per expert) and
lightx2v's alpha-folded variant (up·alpha/rank, no alpha keys) - not by cos-ray's writer nor renamed from a diffusers
file. The reference is W + scale·(alpha/rank)·up·down computed here with torch on the tiny preset's own weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from cos_ray.errors import CheckpointError
from cos_ray.model.loader import load_pipeline

RANK, ALPHA = 64, 8.0  # the release's rank; alpha / rank = 0.125 (the "strength 0.125" users apply by hand elsewhere)
# WanModel (Lightning's names) -> diffusers' WanTransformer3DModel module, for the hand-applied reference only
WAN_TO_DIFFUSERS = {
    **{f"self_attn.{o}": f"attn1.{c}" for o, c in zip("qkvo", ("to_q", "to_k", "to_v", "to_out.0"))},
    **{f"cross_attn.{o}": f"attn2.{c}" for o, c in zip("qkvo", ("to_q", "to_k", "to_v", "to_out.0"))},
    "ffn.0": "ffn.net.0.proj", "ffn.2": "ffn.net.2",
}
BLOCKS = 40


def _lightning_state(transformer, seed: int) -> dict:
    """{key: tensor} of a Lightning-format LoRA for `transformer`'s shapes: every block's 10 linears."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    modules = dict(transformer.named_modules())
    state = {}
    for block in range(BLOCKS):
        for wan, ours in WAN_TO_DIFFUSERS.items():
            out_features, in_features = modules[f"blocks.{block}.{ours}"].weight.shape
            name = f"diffusion_model.blocks.{block}.{wan}"
            state[f"{name}.lora_down.weight"] = torch.randn(RANK, in_features, generator=generator) * 0.05
            state[f"{name}.lora_up.weight"] = torch.randn(out_features, RANK, generator=generator) * 0.05
            state[f"{name}.alpha"] = torch.tensor(ALPHA)
    return state


def _folded(state: dict) -> dict:
    """lightx2v's variant of a Lightning file: alpha/rank folded into up, alpha keys dropped."""
    out = {}
    for key, value in state.items():
        if key.endswith(".alpha"):
            continue
        if key.endswith(".lora_up.weight"):
            name = key.removesuffix(".lora_up.weight")
            value = value * (float(state[f"{name}.alpha"]) / state[f"{name}.lora_down.weight"].shape[0])
        out[key] = value.contiguous()
    return out


@pytest.fixture(scope="module")
def base():
    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="module")
def lightning_files(tmp_path_factory, base):
    """{'lightning': {high, low}, 'lightx2v': {high, low}} files and the states they hold."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("Wan2.2-I2V-A14B-4steps-lora-rank64-Seko-V1")
    states = {"high": _lightning_state(base.pipe.transformer, 1), "low": _lightning_state(base.pipe.transformer_2, 2)}
    files = {"lightning": {}, "lightx2v": {}}
    for expert, state in states.items():
        files["lightning"][expert] = folder / f"{expert}_noise_model.safetensors"
        save_file(state, str(files["lightning"][expert]))
        files["lightx2v"][expert] = folder / f"{expert}_noise_model_lightx2v.safetensors"
        save_file(_folded(state), str(files["lightx2v"][expert]))
    return files, states


def _by_hand(base, states: dict, scale: float) -> dict:
    """{(expert, diffusers module): W + scale·(alpha/rank)·up·down} on the base model's weights."""
    import torch

    expected = {}
    for expert, module in (("high", base.pipe.transformer), ("low", base.pipe.transformer_2)):
        weights = dict(module.named_parameters())
        for block in range(BLOCKS):
            for wan, ours in WAN_TO_DIFFUSERS.items():
                name = f"diffusion_model.blocks.{block}.{wan}"
                down, up = states[expert][f"{name}.lora_down.weight"], states[expert][f"{name}.lora_up.weight"]
                ratio = float(states[expert][f"{name}.alpha"]) / down.shape[0]
                with torch.no_grad():
                    expected[expert, f"blocks.{block}.{ours}"] = (weights[f"blocks.{block}.{ours}.weight"]
                                                                  + scale * ratio * (up @ down))
    return expected


def _fused_weights(model) -> dict:
    out = {}
    for expert, module in (("high", model.pipe.transformer), ("low", model.pipe.transformer_2)):
        weights = dict(module.named_parameters())
        for block in range(BLOCKS):
            for ours in WAN_TO_DIFFUSERS.values():
                out[expert, f"blocks.{block}.{ours}"] = weights[f"blocks.{block}.{ours}.weight"].detach()
    return out


@pytest.mark.parametrize("variant", ["lightning", "lightx2v"])
def test_a_lightning_pair_is_named_counted_and_equals_the_hand_applied_update(variant, lightning_files, base):
    files, states = lightning_files
    model = load_pipeline("tiny", device="cpu", lora={**files[variant], "fuse": True})
    for expert, record in model.lora_records.items():
        assert record["convention"] == variant
        assert record["layers_injected"] == record["pairs"] == BLOCKS * 10  # every attention and FFN linear
        assert record["alpha_scale"] == (ALPHA / RANK if variant == "lightning" else None)
    expected = _by_hand(base, states, scale=1.0)
    fused = _fused_weights(model)
    worst = max(float((fused[key] - expected[key]).abs().max()) for key in expected)
    assert worst < 1e-6
    # the update is real (0.125 · up·down is not lost in rounding) and not applied at alpha = rank (8x larger)
    original = {name: value.detach() for name, value in base.pipe.transformer.named_parameters()}
    assert min(float((fused[key] - original[f"{key[1]}.weight"]).abs().max()) for key in expected if key[0] == "high") > 1e-3


def test_a_user_scale_multiplies_alpha_over_rank_in_the_unfused_layers(lightning_files, base):
    """Unfused (a peft layer per linear, the scale applied at every call): layer(x) = x·(W + 0.5·0.125·up·down)ᵀ + b."""
    import torch

    files, states = lightning_files
    model = load_pipeline("tiny", device="cpu", lora={**files["lightning"], "scale": 0.5})
    assert model.lora_records["transformer_2"]["scale"] == 0.5
    expected = _by_hand(base, states, scale=0.5)
    worst = 0.0
    for expert, module in (("high", model.pipe.transformer), ("low", model.pipe.transformer_2)):
        modules = dict(module.named_modules())
        for block in (0, 20, 39):
            for ours in WAN_TO_DIFFUSERS.values():
                layer = modules[f"blocks.{block}.{ours}"]
                inputs = torch.randn(3, 7, layer.in_features, generator=torch.Generator().manual_seed(block))
                with torch.no_grad():
                    reference = torch.nn.functional.linear(inputs, expected[expert, f"blocks.{block}.{ours}"],
                                                           layer.base_layer.bias)
                    worst = max(worst, float((layer(inputs) - reference).abs().max()))
    assert worst < 1e-5


def test_a_file_in_no_convention_is_refused_naming_its_first_keys(lightning_files, tmp_path):
    """Lightning's keys under another prefix (as a wrapper's checkpoint might save them): refused before loading."""
    from safetensors.torch import load_file, save_file

    from cos_ray.model.identity import lora_identity

    files, _ = lightning_files
    state = load_file(str(files["lightning"]["high"]))
    bad = tmp_path / "wrapped.safetensors"
    save_file({f"model.{key}": value for key, value in state.items()}, str(bad))
    pattern = (r"wrapped.safetensors: in no known LoRA convention .*first keys: "
               r"model.diffusion_model.blocks.0.cross_attn.k.alpha, model.diffusion_model.blocks.0.cross_attn.k.lora_down")
    with pytest.raises(CheckpointError, match=pattern):
        load_pipeline("tiny", device="cpu", lora={"high": bad})
    with pytest.raises(CheckpointError, match=pattern):  # spec expansion reads only the header, and refuses it too
        lora_identity({"high": str(bad)})


def test_the_lightning_sampler_preset_is_the_releases_schedule(tiny_model):
    """Wan2.2-Lightning's generate.py + wan_i2v_A14B.py: 4 Euler steps on linspace(1000, 0, 5) shifted by 5, the
    last dropped; t >= 900 on the high-noise expert; guidance 1 (one forward pass a step)."""
    from cos_ray.engine.schedulers import make_scheduler_from_config
    from cos_ray.sampler import preset_settings
    from cos_ray.spec.plan import passes_per_run

    settings = preset_settings("lightning-4step", "a14b")
    assert (settings.steps, settings.shift, settings.guidance, settings.guidance_2, settings.boundary,
            settings.scheduler) == (4, 5.0, 1.0, 1.0, 0.9, "flowmatch-euler")
    t = np.linspace(1000, 0, 5, dtype=np.float32) / 1000
    expected = (5 * t / (1 + 4 * t) * 1000)[:-1]  # 1000, 937.5, 833.3, 625
    scheduler = make_scheduler_from_config(tiny_model.pipe.scheduler.config, settings.scheduler, settings.shift)
    scheduler.set_timesteps(settings.steps)
    assert np.allclose(scheduler.timesteps.numpy(), expected, atol=1e-3)
    assert float(scheduler.sigmas[-1]) == 0.0  # the last step lands on sigma 0
    assert [("high" if step >= settings.boundary * 1000 else "low") for step in expected] == ["high", "high", "low",
                                                                                                "low"]
    assert passes_per_run(settings) == 4  # no unconditional pass (50 steps at CFG 5: 100)


def test_a_spec_names_the_preset_and_its_own_fields_win(tmp_path):
    from cos_ray.errors import UsageError
    from cos_ray.spec.load import validate

    data = {"name": "p", "model": "tiny", "tasks": {"generate": {"family": "maze", "n": 1, "seed": 0}},
            "seeds": [0], "methods": ["baseline"], "sampler": {"preset": "lightning-4step", "steps": 8}}
    settings = validate(data).points[0].settings
    assert (settings.steps, settings.guidance, settings.boundary, settings.frames) == (8, 1.0, 0.9, 9)
    data["sampler"] = {"preset": "lightning"}
    with pytest.raises(UsageError, match=r"sampler.preset: expected one of (\S+, )*lightning-4step(, \S+)*, got 'lightning'"):
        validate(data)
