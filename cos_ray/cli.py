"""The `cos-ray` command: a thin face over the package.

Commands import what they need inside their bodies, so that `cos-ray --help` and commands that run no model never
import torch, diffusers or ray (~7.5 s per process).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from cos_ray import __version__
from cos_ray.errors import CosRayError


def reports_errors(command):
    """Print a CosRayError as one line on stderr and exit with its code, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CosRayError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cos-ray")
def main() -> None:
    """Sweeps over the Chain-of-Steps of Wan2.2 video reasoning models on Ray."""


@main.command()
@click.argument("task_dir", required=False, type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), help="First frame (instead of TASK_DIR).")
@click.option("--prompt", help="Prompt (with --image).")
@click.option("--model", "model_name", default="tiny", show_default=True, help="'tiny', 'tiny-ti2v' or a local directory.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--steps", type=int, help="Denoising steps (default: the model's).")
@click.option("--frames", type=int, help="Frame count, 4k+1.")
@click.option("--height", type=int)
@click.option("--width", type=int)
@click.option("--guidance", type=float, help="CFG scale of both experts.")
@click.option("--shift", type=float, help="Flow shift.")
@click.option("--scheduler", type=click.Choice(["unipc", "euler"]))
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


from cos_ray.cli_tasks import tasks  # noqa: E402  (last: it imports reports_errors lazily)
main.add_command(tasks)

from cos_ray import cli_sweep  # noqa: E402  (plan, spec, sql, compact: no model, no torch)
main.add_command(cli_sweep.plan)
main.add_command(cli_sweep.spec)
main.add_command(cli_sweep.sql)
main.add_command(cli_sweep.compact)

from cos_ray.cli_submit import export, submit, verify  # noqa: E402  (ray, torch imported only when a sweep runs here)
main.add_command(submit)
main.add_command(verify)
main.add_command(export)

from cos_ray import cli_jobs  # noqa: E402  (status, logs, stop, list: sweeps as Ray Jobs; ray imported in the bodies)
for _command in cli_jobs.COMMANDS:
    main.add_command(_command)

from cos_ray.cli_dashboard import dashboard  # noqa: E402  (streamlit runs in a child process)
main.add_command(dashboard)

if __name__ == "__main__":
    main()
