"""Assemble a `WanImageToVideoPipeline` from a local checkpoint in any layout users download, component by component.

One function for real checkpoints and the tiny presets alike. The layout is detected (`inspect_checkpoint`): a
diffusers-format directory (each expert via `WanTransformer3DModel.from_pretrained(..., subfolder=...)`), the original
Wan layout (`wan_original`: `from_single_file` with a locally built config, the UMT5 key map, the Wan2.1 VAE), or
ComfyUI single-file experts over a base directory (`comfy`). A device map can be given per expert (sharding a 14 B
expert over a worker's GPUs). LoRAs load in any common convention and are counted (`lora_conventions`). The hub is
never contacted: `HF_HUB_OFFLINE` is set and every call is `local_files_only`. The directory is inspected first, so a
malformed one fails before any weights are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cos_ray.errors import CheckpointError
from cos_ray.model.checkpoint import CheckpointLayout, inspect_checkpoint
from cos_ray.model.source import is_preset, model_directory, model_family


@dataclass
class LoadedModel:
    """A pipeline ready to sample, with what the engine needs to know about it."""

    name: str  # what the user named: a preset or a directory
    family: str  # tiny-a14b, tiny-ti2v, a14b, ti2v (sampler defaults)
    layout: CheckpointLayout
    pipe: Any  # diffusers.WanImageToVideoPipeline
    device: str
    dtype: Any  # torch.dtype of the transformers
    lora: dict[str, str] = field(default_factory=dict)  # expert -> LoRA file
    lora_records: dict[str, dict] = field(default_factory=dict)  # expert -> LoraRecord.as_dict(): convention, layers
    offload: bool = False  # components wait on the CPU and move to `device` when they run (`enable_model_cpu_offload`)
    scheduler_config: Any = None  # the checkpoint's own scheduler config; each run derives its scheduler from it

    def experts(self) -> dict[str, Any]:
        """{'high': transformer, 'low': transformer_2} (only 'high' for one-transformer layouts)."""
        found = {"high": self.pipe.transformer}
        if self.pipe.transformer_2 is not None:
            found["low"] = self.pipe.transformer_2
        return found


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_lora(lora: dict | None, layout: CheckpointLayout) -> tuple[dict[str, Path], float, bool]:
    from cos_ray.model.lora_conventions import lora_options

    given, scale, fuse = lora_options(lora)
    files = {}
    for expert, path in given.items():
        if expert not in layout.experts:
            raise CheckpointError(f"lora: {expert!r} is not an expert of this model; experts: {', '.join(layout.experts)}")
        if not path.is_file():
            raise CheckpointError(f"lora.{expert}: file {path} does not exist (one .safetensors file per expert)")
        files[expert] = path
    return files, scale, fuse


def _load_shared(layout: CheckpointLayout, dtype):
    """Tokenizer, text encoder, VAE (fp32) and scheduler, from wherever the layout keeps them."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler
    from transformers import AutoTokenizer, UMT5EncoderModel

    source = layout.base_format if layout.format == "comfy" else layout.format
    if source == "wan-original":
        from cos_ray.model import wan_original

        tokenizer = AutoTokenizer.from_pretrained(layout.files["tokenizer"], local_files_only=True)
        text_encoder = wan_original.load_t5(layout.files["text_encoder"], layout.files["tokenizer"], dtype)
        vae = wan_original.load_vae(layout.files["vae"])
        return tokenizer, text_encoder, vae, UniPCMultistepScheduler(**wan_original.SCHEDULER_CONFIG)
    root, local = layout.path, dict(local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer", **local)
    text_encoder = UMT5EncoderModel.from_pretrained(root, subfolder="text_encoder", torch_dtype=dtype, **local)
    vae = AutoencoderKLWan.from_pretrained(root, subfolder="vae", torch_dtype=torch.float32, **local)
    scheduler = UniPCMultistepScheduler.from_pretrained(root, subfolder="scheduler", **local)
    return tokenizer, text_encoder, vae, scheduler


def _load_expert(layout: CheckpointLayout, expert: str, dtype, device: str, device_map):
    """One expert: from_pretrained for the diffusers format, from_single_file (shard by shard) for Wan-named weights.

    Wan-named weights load straight onto `device` (cast there as they are read) or, with a device map, onto the CPU
    in `dtype` and are then dispatched over the map's devices.
    """
    from diffusers import WanTransformer3DModel

    if layout.format == "diffusers":
        return WanTransformer3DModel.from_pretrained(
            layout.path, subfolder=expert, torch_dtype=dtype, device_map=device_map, local_files_only=True
        )
    from cos_ray.model import comfy, wan_original
    from cos_ray.model.shapes import shard_files

    target = "cpu" if device_map else device
    if layout.format == "wan-original":
        folder = layout.files[expert]
        model = wan_original.load_transformer(shard_files(folder), wan_original.expert_config(folder), dtype, target,
                                              where=f"{expert} ({folder.name}/)")
    else:
        path = layout.files[expert]
        base = _base_layout(layout)
        model = wan_original.load_transformer([path], comfy.expert_config(path, base, expert), dtype, target,
                                              where=f"{expert} ({path.name})", strip=comfy.prefix_of(path))
    if device_map:
        from accelerate import dispatch_model

        model = dispatch_model(model, device_map=device_map)
    return model


def _base_layout(layout: CheckpointLayout) -> CheckpointLayout:
    from dataclasses import replace

    if layout.base_format == "wan-original":
        from cos_ray.model.wan_original import inspect_original

        return inspect_original(layout.path)
    return replace(layout, format=layout.base_format, files={})


def load_pipeline(
    model: str | Path,
    *,
    device: str | None = None,
    dtype: Any = None,
    lora: dict[str, str | Path] | None = None,
    device_map: dict[str, Any] | None = None,
    offload: bool = False,
    experts: dict[str, str | Path] | None = None,
    lora_scale: float | None = None,
    fuse_lora: bool | None = None,
) -> LoadedModel:
    """Load `model` ('tiny', 'tiny-ti2v' or a local directory) onto `device` (default: cuda if present, else cpu).

    dtype defaults to bf16 on GPU and fp32 on CPU (the VAE stays fp32). `lora` maps an expert ('transformer' or
    'high', 'transformer_2' or 'low') to one LoRA file, in any convention, and may hold 'scale' and 'fuse'. `device_map` maps an expert subfolder to an accelerate device
    map; an expert loaded with one is left where the map puts it. `offload` keeps every component on the CPU but the one
    running (diffusers' model CPU offload): the idle expert of an A14B model leaves its 26.6 GiB to the running one, for
    two PCIe copies of an expert per trajectory. It excludes device maps. `experts` names ComfyUI-style single-file
    experts ({'transformer': file, 'transformer_2': file}) over `model` as the base directory. Every LoRA is scaled by
    `lora_scale`; `fuse_lora` merges them into the weights (no per-step cost) after checking they applied.
    """
    from cos_ray.model.quiet import quiet_libraries

    quiet_libraries()
    directory = model_directory(model)
    layout = inspect_checkpoint(directory, experts=experts)
    lora_files, scale, fuse = _check_lora(lora, layout)
    scale = scale if lora_scale is None else float(lora_scale)
    fuse = fuse if fuse_lora is None else bool(fuse_lora)
    if offload and device_map:
        raise CheckpointError("offload: a model sharded by device maps cannot also be offloaded; choose one")
    for expert in device_map or {}:
        if expert not in layout.experts:
            raise CheckpointError(f"device_map: {expert!r} is not an expert of this model; experts: {layout.experts}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from diffusers import WanImageToVideoPipeline

    from cos_ray.model.lora_conventions import fuse_loras, load_lora

    device = device or default_device()
    if device == "cpu":
        # 2-thread torch swings wildly on small shared machines; $COS_RAY_CPU_THREADS raises it where cores are free.
        torch.set_num_threads(int(os.environ.get("COS_RAY_CPU_THREADS", "1")))
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    try:
        tokenizer, text_encoder, vae, scheduler = _load_shared(layout, dtype)
        transformers = {
            expert: _load_expert(layout, expert, dtype, "cpu" if offload else device, (device_map or {}).get(expert))
            for expert in layout.experts
        }
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"could not load {directory} ({layout.describe()}): {err}") from err

    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformers["transformer"],
        transformer_2=transformers.get("transformer_2"),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=layout.boundary_ratio,
        expand_timesteps=layout.expand_timesteps,
    )
    records = {expert: load_lora(pipe, expert, file, scale) for expert, file in lora_files.items()}
    if fuse and records:
        records = fuse_loras(pipe, records)
    mapped = set(device_map or {})
    for name, module in pipe.components.items():
        if isinstance(module, torch.nn.Module):
            if name not in mapped and not offload:  # offloaded components stay on the CPU until they run
                module.to(device)
            module.eval()
    if offload:
        pipe.enable_model_cpu_offload(device=device)  # hooks move each component to `device` when it runs
    return LoadedModel(
        name=str(model) if is_preset(model) else str(directory),
        family=model_family(model),
        layout=layout,
        pipe=pipe,
        device=device,
        dtype=dtype,
        lora={expert: str(file) for expert, file in lora_files.items()},
        lora_records={expert: record.as_dict() for expert, record in records.items()},
        scheduler_config=scheduler.config,
        offload=offload,
    )
