"""The tiny presets: Wan2.2-shaped pipelines with tiny widths, built from configs with seeded random weights.

`tiny` has the A14B / VBVR layout (two experts switched at the boundary, 36 input channels, 40 blocks so that the
paper's layers 20-29 exist); `tiny-ti2v` has the TI2V-5B layout (one transformer, 48-channel VAE, expand_timesteps).
Each is written once to a diffusers-format directory under the cache, keyed by a hash of its config, and always
loaded back through `cos_ray.model.loader` - the path real checkpoints take.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

PRESET_SEED = 0

_TRANSFORMER = dict(
    patch_size=[1, 2, 2],
    num_attention_heads=2,
    attention_head_dim=8,
    text_dim=32,
    freq_dim=32,
    ffn_dim=32,
    num_layers=40,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)
_TEXT_ENCODER = dict(
    vocab_size=128,
    d_model=32,
    d_kv=8,
    d_ff=64,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=16,
    dropout_rate=0.0,
    feed_forward_proj="gated-gelu",
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)
_SCHEDULER = dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0, num_train_timesteps=1000)

PRESETS = {
    "tiny": dict(
        vae=dict(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]),
        transformer={**_TRANSFORMER, "in_channels": 36, "out_channels": 16},
        experts=["transformer", "transformer_2"],
        boundary_ratio=0.875,
        expand_timesteps=False,
    ),
    "tiny-ti2v": dict(
        vae=dict(
            base_dim=8, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
            latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
            scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
        ),
        transformer={**_TRANSFORMER, "num_layers": 30, "in_channels": 48, "out_channels": 48},
        experts=["transformer"],
        boundary_ratio=None,
        expand_timesteps=True,
    ),
}

# A small word-level vocabulary: prompts of the reasoning tasks map to distinct ids, anything else to <unk>.
_WORDS = (
    "the a an of to in on and from at with by is are be it this that its their into along through "
    "maze path start goal green red orange yellow blue pink purple black white gray wall walls square disc circle "
    "cell cells grid move moves moving agent shortest draw drawn line solve solution find reach left right up down "
    "top bottom pattern symbol sequence next complete completion shape shapes object objects video camera static "
    "frame first last show shows showing then until one two three four five six seven eight nine zero"
).split()


def cache_root() -> Path:
    """Where presets are written: $COS_RAY_CACHE, else ~/.cache/cos-ray."""
    return Path(os.environ.get("COS_RAY_CACHE", Path.home() / ".cache" / "cos-ray")).expanduser()


def preset_key(name: str) -> str:
    """A hash of everything that decides the preset's weights, so a changed config never reuses a stale directory.

    Pure Python (the diffusers version is read from the package metadata, not imported): unit ids use it.
    """
    from importlib.metadata import version

    blob = json.dumps(
        {"preset": PRESETS[name], "text_encoder": _TEXT_ENCODER, "scheduler": _SCHEDULER, "words": _WORDS,
         "seed": PRESET_SEED, "diffusers": version("diffusers")},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _build_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def build_tiny_pipeline(name: str = "tiny"):
    """The preset as an in-memory `WanImageToVideoPipeline` with seeded random weights (eval mode)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    preset = PRESETS[name]
    torch.manual_seed(PRESET_SEED)
    vae = AutoencoderKLWan(**preset["vae"])
    torch.manual_seed(PRESET_SEED + 1)
    text_encoder = UMT5EncoderModel(UMT5Config(**_TEXT_ENCODER))
    experts = {}
    for offset, expert in enumerate(preset["experts"]):
        torch.manual_seed(PRESET_SEED + 2 + offset)
        experts[expert] = WanTransformer3DModel(**preset["transformer"])
    pipe = WanImageToVideoPipeline(
        tokenizer=_build_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=UniPCMultistepScheduler(**_SCHEDULER),
        transformer=experts["transformer"],
        transformer_2=experts.get("transformer_2"),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=preset["boundary_ratio"],
        expand_timesteps=preset["expand_timesteps"],
    )
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    return pipe


def tiny_checkpoint(name: str = "tiny") -> Path:
    """The preset's diffusers-format directory, written on first use (atomically: safe for concurrent workers)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    target = cache_root() / "presets" / f"{name}-{preset_key(name)}"
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        build_tiny_pipeline(name).save_pretrained(staging, safe_serialization=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "model_index.json").is_file():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
