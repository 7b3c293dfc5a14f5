"""`cos-ray convert SRC DST`: any checkpoint layout cos-ray reads, written once as a diffusers-format directory.

Loading the original Wan layout converts keys and casts fp32 shards on every start; converting once writes the bf16
experts (and bf16 text encoder, fp32 VAE) that `from_pretrained` then reads directly. A LoRA can be fused in on the way.
"""

from __future__ import annotations

from pathlib import Path

import click

from cos_ray.cli.errors import reports_errors


@click.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--lora-high", type=click.Path(path_type=Path), help="Fuse this LoRA into the high-noise expert.")
@click.option("--lora-low", type=click.Path(path_type=Path), help="Fuse this LoRA into the low-noise expert.")
@click.option("--lora-scale", type=float, default=1.0, show_default=True)
@click.option("--expert-high", type=click.Path(path_type=Path), help="ComfyUI single-file high-noise expert.")
@click.option("--expert-low", type=click.Path(path_type=Path), help="ComfyUI single-file low-noise expert.")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), default="bf16", show_default=True,
              help="Transformers' and text encoder's dtype (the VAE stays fp32).")
@reports_errors
def convert(src, dst, lora_high, lora_low, lora_scale, expert_high, expert_low, dtype):
    """Write the checkpoint SRC (original Wan layout, ComfyUI experts, diffusers) to DST in diffusers format."""
    import os

    from cos_ray.path_checks import existing_file, existing_folder, folder_or_nothing

    if os.path.lexists(src):  # else a preset's name ("tiny")
        existing_folder(src, "SRC", "checkpoint folder")
    folder_or_nothing(dst, "DST", "new folder for the converted checkpoint")
    for flag, path in (("--lora-high", lora_high), ("--lora-low", lora_low), ("--expert-high", expert_high),
                       ("--expert-low", expert_low)):
        if path is not None:
            existing_file(path, flag, "safetensors file")
    from cos_ray.model.convert import convert_checkpoint

    lora = {key: value for key, value in (("high", lora_high), ("low", lora_low)) if value is not None}
    experts = {key: value for key, value in (("transformer", expert_high), ("transformer_2", expert_low))
               if value is not None}
    layout = convert_checkpoint(src, dst, dtype=dtype, lora={**lora, "scale": lora_scale} if lora else None,
                                experts=experts or None)
    click.echo(f"{src}: {layout} -> {dst} (diffusers format, {dtype})")
