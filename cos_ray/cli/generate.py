"""`cos-ray generate`: one video (or one seed ensemble) for a task folder or an image and a prompt, in this process
or spread over Ray workers."""

from __future__ import annotations

from pathlib import Path

import click

from cos_ray.cli.errors import reports_errors


@click.command()
@click.argument("task_dir", required=False, type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), help="First frame (instead of TASK_DIR).")
@click.option("--prompt", help="Prompt (with --image).")
@click.option("--model", "model_name", default="tiny", show_default=True, help="'tiny', 'tiny-ti2v' or a local directory.")
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
@click.option("--out", type=click.Path(path_type=Path), default=Path("out/generate"), show_default=True)
@reports_errors
def generate(task_dir, image, prompt, model_name, seed, steps, frames, height, width, guidance, shift, scheduler,
             ensemble_size, ensemble_layers, ensemble_steps, merge, x0_every, workers, out):
    """Generate one video for a task folder (first_frame.png + prompt.txt) or an --image and a --prompt."""
    from cos_ray.engine.records import X0Config
    from cos_ray.errors import UsageError
    from cos_ray.interventions.ensemble import EnsembleConfig
    from cos_ray.model.source import model_family
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import read_task_folder, task_from_image

    if (task_dir is None) == (image is None):
        raise UsageError("give either TASK_DIR or --image with --prompt")
    task = read_task_folder(task_dir) if task_dir is not None else task_from_image(image, prompt)
    settings = default_settings(model_family(model_name)).replace(
        steps=steps, frames=frames, height=height, width=width, guidance=guidance,
        guidance_2=guidance, shift=shift, scheduler=scheduler,
    )

    ensemble = None
    if ensemble_size is not None:
        ensemble = EnsembleConfig(size=ensemble_size, layers=ensemble_layers, steps=ensemble_steps, merge=merge)
    x0 = X0Config(every=x0_every, decode_every=x0_every) if x0_every is not None else None

    if workers is not None:
        from cos_ray.cluster.generate import generate_on_ray

        videos = generate_on_ray(model_name, task, settings, seed, out, workers=workers, ensemble=ensemble, x0=x0)
    else:
        from cos_ray.generate import generate as run
        from cos_ray.model.loader import load_pipeline

        videos = run(load_pipeline(model_name), task, settings, seed, out, ensemble=ensemble, x0=x0)
    click.echo(f"wrote {len(videos)} video(s) and {out / 'settings.json'}")
