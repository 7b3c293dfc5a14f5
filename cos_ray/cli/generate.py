"""`cos-ray generate`: one video (or one seed ensemble) for a task folder or an image and a prompt, in this process
or spread over Ray workers."""

from __future__ import annotations

import time
from pathlib import Path

import click

from cos_ray.cli.errors import reports_errors
from cos_ray.model.source import PRESET_FAMILIES
from cos_ray.staging import check_target, staged_folder


@click.command()
@click.argument("task_dir", required=False, type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), help="First frame (instead of TASK_DIR).")
@click.option("--prompt", help="Prompt (with --image).")
@click.option("--model", "model_name", default="tiny", show_default=True,
              help=f"A preset ({', '.join(PRESET_FAMILIES)}: tiny-reasoner is trained on mazes, the others have random "
                   "weights) or a local checkpoint directory in any layout (docs/models.md).")
@click.option("--seed", default=1, show_default=True, type=int, help="As VBVR's evaluation: 1.")
@click.option("--steps", type=int, help="Denoising steps (default: the model's).")
@click.option("--frames", type=int, help="Frame count, 4k+1.")
@click.option("--height", type=int)
@click.option("--width", type=int)
@click.option("--guidance", type=float, help="CFG scale of both experts.")
@click.option("--shift", type=float, help="Flow shift.")
@click.option("--scheduler", type=click.Choice(["flowmatch-euler", "unipc", "euler"]))
@click.option("--ensemble", "ensemble_size", type=int, help="Members of a seed ensemble (seeds SEED..SEED+N-1).")
@click.option("--ensemble-layers", default="20-29", show_default=True, help="Blocks whose states are merged.")
@click.option("--ensemble-steps", default="0-20%", show_default=True, help="Steps merged, inclusive ('0-9', '0-20%').")
@click.option("--merge", type=click.Choice(["stream", "update"]), default="stream", show_default=True,
              help="stream: replace block outputs by the mean; update: average each block's update.")
@click.option("--x0-every", type=int, help="Record x̂0 every K steps and decode it into a filmstrip.")
@click.option("--workers", type=int,
              help="Spread the seeds over N Ray workers, merged across them ($RAY_ADDRESS, else a local cluster).")
@click.option("--ulysses", type=int,
              help="Each worker is K Ray actors splitting every forward's tokens (Ulysses sequence parallelism).")
@click.option("--fsdp", is_flag=True, help="With --ulysses: also shard the weights over the K actors (FSDP2).")
@click.option("--cfg-parallel", is_flag=True,
              help="Each worker runs CFG's cond and uncond passes on two sets of actors at once (2 x K actors; needs "
                   "--guidance > 1).")
@click.option("--lora-high", type=click.Path(path_type=Path),
              help="LoRA of the high-noise expert (transformer); any convention: diffusers, DiffSynth, Kohya, ComfyUI.")
@click.option("--lora-low", type=click.Path(path_type=Path), help="LoRA of the low-noise expert (transformer_2).")
@click.option("--lora", "lora_single", type=click.Path(path_type=Path), help="LoRA of a one-transformer model.")
@click.option("--lora-scale", type=float, default=1.0, show_default=True, help="Scale of every LoRA.")
@click.option("--fuse-lora", is_flag=True, help="Merge the LoRAs into the weights (no per-step cost).")
@click.option("--expert-high", type=click.Path(path_type=Path),
              help="ComfyUI-style single-file high-noise expert; --model is then the base directory (T5, VAE).")
@click.option("--expert-low", type=click.Path(path_type=Path), help="ComfyUI-style single-file low-noise expert.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder of this run: must be absent or empty (--overwrite replaces it whole). Default: a new folder "
                   "per run, out/generate/TASK-seedS-TIME.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out whole (once the new run is written).")
@reports_errors
def generate(task_dir, image, prompt, model_name, seed, steps, frames, height, width, guidance, shift, scheduler,
             ensemble_size, ensemble_layers, ensemble_steps, merge, x0_every, workers, ulysses, fsdp, cfg_parallel, lora_high,
             lora_low, lora_single, lora_scale, fuse_lora, expert_high, expert_low, out, overwrite):
    """Generate one video for a task folder (first_frame.png + prompt.txt) or an --image and a --prompt."""
    from cos_ray.engine.records import X0Config
    from cos_ray.errors import UsageError
    from cos_ray.interventions.ensemble import EnsembleConfig
    from cos_ray.model.source import model_family
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import read_task_folder, task_from_image

    if (task_dir is None) == (image is None):
        raise UsageError("give either TASK_DIR or --image with --prompt")
    lora = {key: value for key, value in (("high", lora_high), ("low", lora_low), ("transformer", lora_single))
            if value is not None}
    if lora_single is not None and lora_high is not None:
        raise UsageError("--lora and --lora-high both name the first transformer's LoRA; give one")
    experts = {key: value for key, value in (("transformer", expert_high), ("transformer_2", expert_low))
               if value is not None}
    parallel = None
    layout = None
    if ulysses is not None or fsdp or cfg_parallel:
        from cos_ray.engine.parallel_layout import as_layout

        parallel = {"ulysses": 1 if ulysses is None else ulysses, "fsdp": fsdp, "cfg": cfg_parallel}
        layout = as_layout(parallel, field="--ulysses/--fsdp")  # refuses K < 1, or --fsdp without K >= 2
        workers = workers or 1  # a parallel layout runs on Ray: K (2K with --cfg-parallel) actors per worker
    if workers is not None and (lora or experts):
        raise UsageError("--lora*/--expert-* with --workers: put them in a sweep spec (model.lora) instead")
    if lora:
        lora.update(scale=lora_scale, fuse=fuse_lora)
    task = read_task_folder(task_dir) if task_dir is not None else task_from_image(image, prompt)
    if out is None:
        out = Path("out/generate") / f"{task.task_id}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_target(out, overwrite)  # before any model time; checked again when the run is swapped in
    settings = default_settings(model_family(model_name)).replace(
        steps=steps, frames=frames, height=height, width=width, guidance=guidance,
        guidance_2=guidance, shift=shift, scheduler=scheduler,
    )
    if layout is not None and layout.guidance_problem(settings.guidance):
        raise UsageError(f"--cfg-parallel: {layout.guidance_problem(settings.guidance)}")

    ensemble = None
    if ensemble_size is not None:
        ensemble = EnsembleConfig(size=ensemble_size, layers=ensemble_layers, steps=ensemble_steps, merge=merge)
        _check_ranges_before_loading(ensemble, model_name, settings.steps)
    x0 = X0Config(every=x0_every, decode_every=x0_every) if x0_every is not None else None

    if workers is not None:
        from cos_ray.cluster.videos_on_ray import generate_on_ray

        with staged_folder(out, overwrite) as staging:
            videos = generate_on_ray(model_name, task, settings, seed, staging, workers=workers, ensemble=ensemble,
                                     x0=x0, parallel=parallel)
    else:
        from cos_ray.videos import generate as run
        from cos_ray.model.loader import load_pipeline

        model = load_pipeline(model_name, lora=lora or None, experts=experts or None)
        click.echo(f"model: {model.name}: {model.layout.describe()}", err=True)
        for expert, record in model.lora_records.items():
            click.echo(f"lora {expert}: {record['file']} ({record['convention']} convention, "
                       f"{record['layers_injected']} layers injected, scale {record['scale']:g}"
                       + (", fused" if record["fused"] else "") + ")", err=True)
        with staged_folder(out, overwrite) as staging:
            videos = run(model, task, settings, seed, staging, ensemble=ensemble, x0=x0)
    click.echo(f"wrote {len(videos)} video(s) and {out / 'settings.json'}")


def _check_ranges_before_loading(ensemble, model_name: str, steps: int) -> None:
    """Layer and step ranges judged from the model's config (a preset's definition or the checkpoint's config files),
    before any weights load; a model that cannot be read is left for the loader to name."""
    from cos_ray.errors import UsageError
    from cos_ray.spec.model import transformer_config

    try:
        num_layers = transformer_config(model_name)["num_layers"]
    except (UsageError, KeyError):
        return
    ensemble.resolved(num_layers, steps)

