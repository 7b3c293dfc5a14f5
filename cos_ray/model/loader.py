"""Assemble a `WanImageToVideoPipeline` from a local diffusers-format directory, component by component.

One function for real checkpoints and the tiny presets alike. Each expert is loaded on its own with
`WanTransformer3DModel.from_pretrained(..., subfolder=...)` so that a device map can be given per expert (sharding a
14 B expert over a worker's GPUs). The hub is never contacted: `HF_HUB_OFFLINE` is set and every call is
`local_files_only`. The directory is inspected first, so a malformed one fails before any weights are read.
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
    lora: dict[str, str] = field(default_factory=dict)
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


def _check_lora(lora: dict[str, str | Path], layout: CheckpointLayout) -> dict[str, Path]:
    files = {}
    for expert, file in lora.items():
        if expert not in layout.experts:
            raise CheckpointError(f"lora: {expert!r} is not an expert of this model; experts: {', '.join(layout.experts)}")
        path = Path(file).expanduser()
        if not path.is_file():
            raise CheckpointError(f"lora.{expert}: file {path} does not exist (one .safetensors file per expert)")
        files[expert] = path
    return files


def load_pipeline(
    model: str | Path,
    *,
    device: str | None = None,
    dtype: Any = None,
    lora: dict[str, str | Path] | None = None,
    device_map: dict[str, Any] | None = None,
    offload: bool = False,
) -> LoadedModel:
    """Load `model` ('tiny', 'tiny-ti2v' or a local directory) onto `device` (default: cuda if present, else cpu).

    dtype defaults to bf16 on GPU and fp32 on CPU (the VAE stays fp32). `lora` maps an expert subfolder
    ('transformer', 'transformer_2') to one LoRA file. `device_map` maps an expert subfolder to an accelerate device
    map; an expert loaded with one is left where the map puts it. `offload` keeps every component on the CPU but the one
    running (diffusers' model CPU offload): the idle expert of an A14B model leaves its 26.6 GiB to the running one, for
    two PCIe copies of an expert per trajectory. It excludes device maps.
    """
    directory = model_directory(model)
    layout = inspect_checkpoint(directory)
    lora_files = _check_lora(lora or {}, layout)
    if offload and device_map:
        raise CheckpointError("offload: a model sharded by device maps cannot also be offloaded; choose one")
    for expert in device_map or {}:
        if expert not in layout.experts:
            raise CheckpointError(f"device_map: {expert!r} is not an expert of this model; experts: {layout.experts}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    device = device or default_device()
    if device == "cpu":
        # 2-thread torch swings wildly on small shared machines; $COS_RAY_CPU_THREADS raises it where cores are free.
        torch.set_num_threads(int(os.environ.get("COS_RAY_CPU_THREADS", "1")))
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    local = dict(local_files_only=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer", **local)
        text_encoder = UMT5EncoderModel.from_pretrained(directory, subfolder="text_encoder", torch_dtype=dtype, **local)
        vae = AutoencoderKLWan.from_pretrained(directory, subfolder="vae", torch_dtype=torch.float32, **local)
        scheduler = UniPCMultistepScheduler.from_pretrained(directory, subfolder="scheduler", **local)
        experts = {
            expert: WanTransformer3DModel.from_pretrained(
                directory, subfolder=expert, torch_dtype=dtype, device_map=(device_map or {}).get(expert), **local
            )
            for expert in layout.experts
        }
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"could not load {directory}: {err}") from err

    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=experts["transformer"],
        transformer_2=experts.get("transformer_2"),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=layout.boundary_ratio,
        expand_timesteps=layout.expand_timesteps,
    )
    for expert, file in lora_files.items():
        pipe.load_lora_weights(
            str(file), adapter_name=f"cos_ray_{expert}", load_into_transformer_2=(expert == "transformer_2")
        )
    mapped = set(device_map or {})
    for name, module in pipe.components.items():
        if isinstance(module, torch.nn.Module):
            if name not in mapped:
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
        scheduler_config=scheduler.config,
        offload=offload,
    )
