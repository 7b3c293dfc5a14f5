"""Convert a checkpoint in any layout cos-ray reads into a diffusers-format directory (written once, atomically).

The model goes through the loader (so the tensors are exactly those a run would use) and diffusers'
`save_pretrained` writes it; LoRAs given are fused first. Nothing partial is left at DST: the directory is staged
beside it and renamed when complete.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cos_ray.errors import UsageError


def convert_checkpoint(src, dst, dtype: str = "bf16", lora: dict | None = None, experts: dict | None = None) -> str:
    """Write `src` to `dst` in diffusers format; returns the layout found (`describe()`)."""
    target = Path(dst).expanduser().resolve()
    if target.exists():
        raise UsageError(f"dst: {target} exists; give a new directory")
    import torch

    from cos_ray.model.loader import load_pipeline

    model = load_pipeline(src, device="cpu", dtype=torch.bfloat16 if dtype == "bf16" else torch.float32,
                          lora=lora, fuse_lora=True if lora else None, experts=experts)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.pipe.save_pretrained(staging, safe_serialization=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model.layout.describe()
