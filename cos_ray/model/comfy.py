"""ComfyUI-style single-file experts: one `.safetensors` per expert with Wan key names, over a base directory.

Merged fine-tunes (e.g. a VBVR high/low pair with its LoRA baked in) are passed around as one file per expert, with or
without ComfyUI's `model.diffusion_model.` prefix, and without text encoder, VAE or tokenizer: those come from a base
checkpoint directory in any layout cos-ray reads (diffusers format or the original Wan layout). The expert's config is
its shapes, with the head count and eps taken from the base's own transformer config.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cos_ray.bounded_read import read_json
from cos_ray.errors import CheckpointError
from cos_ray.model.checkpoint import CheckpointLayout
from cos_ray.model.shapes import COMFY_PREFIX, safetensors_header, wan_transformer_config


def prefix_of(path: Path) -> str:
    """'model.diffusion_model.' when the file's keys carry ComfyUI's prefix, else ''."""
    names = safetensors_header(path)
    return COMFY_PREFIX if any(name.startswith(COMFY_PREFIX) for name in names) else ""


def base_transformer_config(base: CheckpointLayout, expert: str) -> dict:
    """The base directory's own config for `expert` (diffusers config.json or WanModel config.json)."""
    folder = base.files.get(expert) if base.format == "wan-original" else base.path / expert
    if folder is None or not (Path(folder) / "config.json").is_file():
        return {}
    return read_json(Path(folder) / "config.json", what="config")


def expert_config(path: Path, base: CheckpointLayout, expert: str) -> dict:
    """The diffusers transformer config of one single-file expert."""
    prefix = prefix_of(path)
    shapes = {name.removeprefix(prefix): tuple(entry["shape"]) for name, entry in safetensors_header(path).items()}
    return wan_transformer_config(shapes, base_transformer_config(base, expert), where=f"{expert} ({path.name})")


def inspect_comfy(base: CheckpointLayout, experts: dict[str, str | Path]) -> CheckpointLayout:
    """The base layout with its experts replaced by single files (checked: present, WanModel-named, sized alike)."""
    files = dict(base.files)
    for expert, file in experts.items():
        if expert not in base.experts:
            raise CheckpointError(
                f"experts: {expert!r} is not an expert of the base model {base.path}; experts: {', '.join(base.experts)}"
            )
        path = Path(file).expanduser().resolve()
        if not path.is_file():
            raise CheckpointError(f"experts.{expert}: file {path} does not exist (one .safetensors file per expert)")
        if path.suffix != ".safetensors":
            raise CheckpointError(f"experts.{expert}: {path.name} is not a .safetensors file")
        expert_config(path, base, expert)  # raises, naming the file, if the keys are not WanModel's
        files[expert] = path
    missing = [expert for expert in base.experts if expert not in experts]
    if missing:
        raise CheckpointError(
            f"experts: give a file for every expert of {base.path} (missing: {', '.join(missing)}); "
            "mixing single files with the base's own experts is not supported"
        )
    return replace(base, format="comfy", files=files, base_format=base.format)
