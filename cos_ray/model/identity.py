"""A model's identity for unit ids and provenance: what decides its outputs, hashed cheaply and without torch.

A preset is its name and config key. A checkpoint directory (any layout) is hashed over its configs, its weight
indexes and, for weight files, their size and safetensors header (tensor names, dtypes, shapes, offsets), or for the
original layout's `.pth` files their size and first and last MiB - reading a few KiB, not 50 GiB. The layout found is
recorded. LoRA files are small and hashed whole; per LoRA the identity records its hash, convention, the layers it
injects and its scale. The layer count is the file's A/B pairs: the loader refuses a LoRA whose injected layers
differ from that count, so a LoRA that applied nothing never produces a row under this identity.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from cos_ray.errors import CheckpointError
from cos_ray.model.checkpoint import inspect_checkpoint
from cos_ray.model.lora_conventions import describe_lora_file, lora_options
from cos_ray.model.source import SHIPPED_PRESETS, is_preset

_HEADER_LIMIT = 64 << 20


def _weights_signature(path: Path) -> bytes:
    """Size plus the safetensors header: changes whenever the tensors' layout or the file's length does."""
    size = path.stat().st_size
    if path.suffix == ".pth":  # a torch zip: the ends hold the archive's directory of tensors
        with path.open("rb") as handle:
            head = handle.read(1 << 20)
            handle.seek(max(0, size - (1 << 20)))
            tail = handle.read()
        return f"{path.name}:{size}:".encode() + hashlib.sha256(head + tail).digest()
    if path.suffix != ".safetensors":
        return f"{path.name}:{size}".encode()
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = handle.read(min(length, _HEADER_LIMIT))
    return f"{path.name}:{size}:".encode() + header


def checkpoint_hash(directory: str | Path, experts: dict[str, str | Path] | None = None) -> str:
    root = Path(directory)
    layout = inspect_checkpoint(root, experts=experts)  # validates first: a broken directory has no identity
    replaced = (*layout.experts, "high_noise_model", "low_noise_model") if layout.format == "comfy" else ()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in replaced:
            continue  # the base's own experts: replaced by the single files
        if path.suffix == ".json" or path.name.endswith(".index.json"):
            digest.update(relative.encode() + b"\0" + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin", ".pth"):
            digest.update(relative.encode() + b"\0" + _weights_signature(path))
    for expert in layout.experts if replaced else ():
        digest.update(expert.encode() + b"\0" + _weights_signature(Path(layout.files[expert])))
    digest.update(repr((layout.family, layout.experts, layout.boundary_ratio)).encode())
    return digest.hexdigest()[:16]


def lora_identity(lora: dict | None) -> dict:
    """{expert: {sha256, convention, layers_injected, scale, fused}} of a LoRA mapping (see `lora_options`)."""
    files, scale, fuse = lora_options(lora)
    identity = {}
    for expert, path in sorted(files.items()):
        if not path.is_file():
            raise CheckpointError(f"lora.{expert}: file {path} does not exist (one .safetensors file per expert)")
        described = describe_lora_file(path)
        if described["pairs"] == 0:
            raise CheckpointError(f"lora {path}: the file holds no LoRA A/B (down/up) pairs")
        identity[expert] = {"sha256": described["sha256"][:16], "convention": described["convention"],
                            "layers_injected": described["pairs"], "scale": scale, "fused": fuse}
    return identity


def model_identity(model: str | Path, lora: dict | None = None, experts: dict[str, str | Path] | None = None) -> dict:
    """{'model', 'hash', ['layout'], 'lora': {expert: {...}}}: stable across machines for the same files."""
    if str(model) in SHIPPED_PRESETS:  # trained weights in the package: hashed like any checkpoint directory
        identity = {"model": str(model), "hash": checkpoint_hash(SHIPPED_PRESETS[str(model)])}
    elif is_preset(model):
        from cos_ray.model.tiny import preset_key

        identity = {"model": str(model), "hash": f"preset-{preset_key(str(model))}"}
    else:
        root = Path(model).expanduser()
        identity = {"model": str(root.resolve()), "hash": checkpoint_hash(root, experts),
                    "layout": inspect_checkpoint(root, experts=experts).format}
    identity["lora"] = lora_identity(lora)
    return identity
