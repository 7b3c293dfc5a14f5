"""A model's identity for unit ids and provenance: what decides its outputs, hashed cheaply and without torch.

A preset is its name and config key. A checkpoint directory is hashed over its configs, its weight indexes and, for
single weight files, their size and safetensors header (tensor names, dtypes, shapes, offsets) - reading a few KiB,
not 50 GiB. LoRA files are small and hashed whole.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from cos_ray.model.checkpoint import inspect_checkpoint
from cos_ray.model.source import SHIPPED_PRESETS, is_preset

_HEADER_LIMIT = 64 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _weights_signature(path: Path) -> bytes:
    """Size plus the safetensors header: changes whenever the tensors' layout or the file's length does."""
    size = path.stat().st_size
    if path.suffix != ".safetensors":
        return f"{path.name}:{size}".encode()
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = handle.read(min(length, _HEADER_LIMIT))
    return f"{path.name}:{size}:".encode() + header


def checkpoint_hash(directory: str | Path) -> str:
    root = Path(directory)
    layout = inspect_checkpoint(root)  # validates first: a broken directory has no identity
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if path.suffix == ".json" or path.name.endswith(".index.json"):
            digest.update(relative.encode() + b"\0" + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin"):
            digest.update(relative.encode() + b"\0" + _weights_signature(path))
    digest.update(repr((layout.family, layout.experts, layout.boundary_ratio)).encode())
    return digest.hexdigest()[:16]


def model_identity(model: str | Path, lora: dict[str, str | Path] | None = None) -> dict:
    """{'model': ..., 'hash': ..., 'lora': {expert: sha256}}: stable across machines for the same files."""
    if str(model) in SHIPPED_PRESETS:  # trained weights in the package: hashed like any checkpoint directory
        identity = {"model": str(model), "hash": checkpoint_hash(SHIPPED_PRESETS[str(model)])}
    elif is_preset(model):
        from cos_ray.model.tiny import preset_key

        identity = {"model": str(model), "hash": f"preset-{preset_key(str(model))}"}
    else:
        identity = {"model": str(Path(model).expanduser().resolve()), "hash": checkpoint_hash(Path(model).expanduser())}
    identity["lora"] = {expert: _file_digest(Path(file))[:16] for expert, file in sorted((lora or {}).items())}
    return identity
