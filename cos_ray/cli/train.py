"""`cos-ray train`: train (or resume) the tiny reasoner from a YAML config; `cos-ray train-eval`: its held-out table.
Imports torch only inside the commands."""

from __future__ import annotations

from pathlib import Path

import click

from cos_ray.cli.errors import reports_errors


@click.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Run directory (checkpoints, logs, export/); resumed if it exists.")
@click.option("--max-steps", type=int, help="Stop the flow-matching stage after this many steps (resume later).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors
def train(config, out, max_steps, quiet):
    """Train the tiny reasoner: CONFIG (e.g. training/configs/tiny-reasoner.yaml) into --out.

    Background run: nohup cos-ray train CONFIG --out DIR > DIR.log 2>&1 &  (the same command resumes it).
    """
    from cos_ray.training.config import load_config
    from cos_ray.training.loop import train as run

    from cos_ray.path_checks import folder_or_nothing

    folder_or_nothing(out, "--out", "training run folder")
    settings = load_config(config)  # a bad config fails before torch is imported
    _, _, _, step = run(settings, out, progress=not quiet, max_steps=max_steps, log=click.echo)
    click.echo(f"trained to step {step}; pipeline in {out / 'export'}")


@click.command("train-eval")
@click.argument("model")
@click.option("--seed", type=int, default=1, show_default=True, help="Held-out task seed (cos-ray tasks generate --seed).")
@click.option("--n", "n", type=int, default=100, show_default=True, help="Held-out samples.")
@click.option("--run-seed", type=int, default=0, show_default=True, help="The sampler's seed on every task.")
@click.option("--methods", default="model,first_frame,vae_round_trip", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for tasks/, rows.jsonl, summary.json.")
@reports_errors
def train_eval(model, seed, n, run_seed, methods, out):
    """Fraction of held-out mazes MODEL solves (tiny-reasoner or a run's export/) with its default sampler."""
    from cos_ray.path_checks import folder_or_nothing

    folder_or_nothing(out, "--out", "folder for the held-out table")
    from cos_ray.training.evaluate import main

    code = main([model, "--seed", str(seed), "--n", str(n), "--run-seed", str(run_seed), "--methods", methods,
                 "--out", str(out)])
    if code:
        raise SystemExit(code)
