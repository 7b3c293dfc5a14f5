"""Tensor shapes read from safetensors headers, and the diffusers transformer config a Wan checkpoint implies.

Checkpoints outside the diffusers format (the original Wan layout, ComfyUI single files) carry at most a `WanModel`
config.json without `text_dim`, patch size or norm flags. What a config lacks is read from the weights' shapes -
a few KiB of header per file, no tensors - so any size loads, tiny test checkpoints included, and nothing is fetched
or hard-coded. Pure Python (bounded JSON + struct): spec validation and `cos-ray plan` use it without torch.
"""

from __future__ import annotations

import struct
from pathlib import Path

from cos_ray.bounded_read import FileRefused, ReadLimits, load_json, read_json
from cos_ray.errors import CheckpointError

_HEADER_LIMIT = 256 << 20
# A header or weight index lists every tensor (an A14B expert: ~1,100): generous counts, nesting as shallow as JSON's.
HEADER_LIMITS = ReadLimits(max_bytes=_HEADER_LIMIT, max_nodes=4_000_000)
INDEX_LIMITS = ReadLimits(max_bytes=64 << 20, max_nodes=4_000_000)
COMFY_PREFIX = "model.diffusion_model."


def safetensors_header(path: Path) -> dict:
    """{tensor name: {'dtype', 'shape', 'data_offsets'}} of one .safetensors file (the metadata entry dropped)."""
    try:
        with Path(path).open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > _HEADER_LIMIT:
                raise ValueError(f"header of {length} bytes")
            header = load_json(handle.read(length).decode("utf-8"), HEADER_LIMITS, path)
    except FileRefused as err:
        raise CheckpointError(f"{path}: not a readable .safetensors header ({err.reason})") from None
    except (OSError, ValueError, struct.error) as err:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({err})") from err
    header.pop("__metadata__", None)
    return header


def shard_files(folder: Path, stem: str = "diffusion_pytorch_model") -> list[Path]:
    """The weight files of a folder: the shards its `{stem}.safetensors.index.json` lists, or one `{stem}.safetensors`."""
    index = folder / f"{stem}.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = read_json(index, INDEX_LIMITS, "weight index")["weight_map"]
        except FileRefused as err:
            raise CheckpointError(f"{index}: not a weight index ({err.reason})") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{index}: not a weight index with a 'weight_map' ({err})") from err
        files = [folder / name for name in dict.fromkeys(weight_map.values())]
        missing = [path.name for path in files if not path.is_file()]
        if missing:
            raise CheckpointError(f"{folder.name}: shard(s) listed in {index.name} are missing: {', '.join(missing)}")
        return files
    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return [single]
    raise CheckpointError(f"{folder}: no weights (expected {stem}.safetensors or {stem}.safetensors.index.json)")


def shapes_of(files: list[Path], strip: str = "") -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} over several files, `strip` removed from the front of every name."""
    shapes = {}
    for path in files:
        for name, entry in safetensors_header(path).items():
            shapes[name.removeprefix(strip)] = tuple(entry["shape"])
    return shapes


def _require(shapes: dict, name: str, where: str) -> tuple[int, ...]:
    if name not in shapes:
        raise CheckpointError(f"{where}: no tensor {name!r}; is this a Wan transformer (WanModel key names)?")
    return shapes[name]


def wan_transformer_config(shapes: dict[str, tuple[int, ...]], base: dict | None, where: str) -> dict:
    """The `WanTransformer3DModel` config of WanModel-named weights.

    `base` is what a config says (a `WanModel` config.json or a diffusers transformer config): the head count and eps
    come from it (no shape carries them; without one, Wan's head width 128 is assumed); every size is read from the
    shapes and, where `base` states it too, must agree.
    """
    base = dict(base or {})
    patch = _require(shapes, "patch_embedding.weight", where)  # (dim, in_channels, pt, ph, pw)
    dim, in_channels = patch[0], patch[1]
    text = _require(shapes, "text_embedding.0.weight", where)  # (dim, text_dim)
    time = _require(shapes, "time_embedding.0.weight", where)  # (dim, freq_dim)
    ffn = _require(shapes, "blocks.0.ffn.0.weight", where)  # (ffn_dim, dim)
    head = _require(shapes, "head.head.weight", where)  # (out_channels * prod(patch), dim)
    layers = 1 + max(int(name.split(".")[1]) for name in shapes if name.startswith("blocks."))
    patch_size = list(patch[2:])
    patch_volume = patch_size[0] * patch_size[1] * patch_size[2]
    heads = base.get("num_heads", base.get("num_attention_heads"))
    if heads is None:
        heads = dim // 128
    config = {
        "_class_name": "WanTransformer3DModel",
        "patch_size": patch_size,
        "num_attention_heads": int(heads),
        "attention_head_dim": dim // int(heads),
        "in_channels": in_channels,
        "out_channels": head[0] // patch_volume,
        "text_dim": text[1],
        "freq_dim": time[1],
        "ffn_dim": ffn[0],
        "num_layers": layers,
        "cross_attn_norm": "blocks.0.norm3.weight" in shapes,
        "qk_norm": "rms_norm_across_heads" if "blocks.0.self_attn.norm_q.weight" in shapes else None,
        "eps": base.get("eps", 1e-6),
        "image_dim": shapes["img_emb.proj.0.weight"][0] if "img_emb.proj.0.weight" in shapes else None,
        "added_kv_proj_dim": dim if "blocks.0.cross_attn.k_img.weight" in shapes else None,
        "rope_max_seq_len": 1024,
    }
    stated = {"dim": dim, "in_dim": in_channels, "ffn_dim": ffn[0], "num_layers": layers, "freq_dim": time[1],
              "out_dim": config["out_channels"], "in_channels": in_channels, "out_channels": config["out_channels"],
              "text_dim": text[1]}
    for key, value in stated.items():
        if key in base and base[key] != value:
            raise CheckpointError(f"{where}: config says {key}={base[key]!r} but the weights' shapes give {value}")
    if dim % int(heads):
        raise CheckpointError(f"{where}: dim {dim} is not divisible by num_heads {heads}")
    return config
