"""`cos-ray tasks`: generate seeded reasoning tasks in the VBVR-Bench layout, and score a video against a sample.

Imports nothing heavy at import time (numpy, OpenCV and the generators load inside the commands).
"""

from __future__ import annotations

from pathlib import Path

import click

from cos_ray.cli.errors import reports_errors



@click.group()
def tasks() -> None:
    """Reasoning tasks: generate VBVR-layout samples with ground truth, score videos."""


@tasks.command()
@click.argument("family", required=False)
@click.option("--for-model", "for_model", help="Samples from the distribution this trained model (tiny-reasoner or a "
              "directory with training.json) learnt: family and parameters from it.")
@click.option("--n", "n", type=int, required=True, help="Samples to write (00000..).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sample i draws from the seed (SEED, i).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Root of the VBVR-layout tree.")
@click.option("--split", type=click.Choice(["In-Domain_50", "Out-of-Domain_50"]), default="In-Domain_50", show_default=True)
@click.option("--task", "task_name", help="Task folder name (default: the family).")
@click.option("--size", type=int, help="Square image side in pixels, even (default 128).")
@click.option("--frames", type=int, help="Ground-truth video frames (default 17).")
@click.option("--cells", type=int, help="maze, grid_path: cells per side.")
@click.option("--obstacles", type=float, help="grid_path: share of blocked cells.")
@click.option("--length", type=int, help="pattern: slots, the empty one included.")
@click.option("--period", type=int, help="pattern: motif length (default 2 or 3 at random).")
@reports_errors
def generate(family, for_model, n, seed, out, split, task_name, **params):
    """Write N samples of FAMILY (maze, grid_path, pattern) as OUT/SPLIT/TASK/{00000..}/."""
    from cos_ray.errors import UsageError
    from cos_ray.tasks.generation import generate_tasks

    given = {k: v for k, v in params.items() if v is not None}
    if for_model is not None:
        from cos_ray.training.distribution import model_distribution

        trained_family, trained = model_distribution(for_model)
        if family not in (None, trained_family) or any(given.get(k, v) != v for k, v in trained.items()):
            raise UsageError(f"--for-model {for_model}: trained on {trained_family} {trained}; drop FAMILY and the "
                             "parameters, or give the same ones")
        family, given = trained_family, {**given, **trained}
    elif family is None:
        raise UsageError("FAMILY: expected maze, grid_path or pattern (or --for-model MODEL)")
    from cos_ray.path_checks import folder_or_nothing

    folder_or_nothing(out, "--out", "folder for the samples")  # before anything is drawn or written
    folders = generate_tasks(family, n, seed, out, split=split, task=task_name, **given)
    click.echo(f"wrote {len(folders)} sample(s) under {folders[0].parent}")


@tasks.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.argument("task_dir", type=click.Path(path_type=Path))
@click.option("--family", help="Scorer family (default: the sample's task.json or task folder name).")
@reports_errors
def score(video, task_dir, family):
    """Score VIDEO against the sample in TASK_DIR; prints the scores as JSON."""
    import dataclasses
    import json

    from cos_ray.errors import UsageError
    from cos_ray.media import read_video
    from cos_ray.tasks.folder import read_task_folder
    from cos_ray.tasks.score import score_video

    from cos_ray.path_checks import existing_file, existing_folder

    existing_file(video, "VIDEO", "video (MP4)")
    existing_folder(task_dir, "TASK_DIR", "sample folder (first_frame.png, prompt.txt)")
    task = read_task_folder(task_dir)
    try:
        frames = read_video(video)
    except (OSError, RuntimeError, ValueError) as err:  # imageio/ffmpeg's words for a file that is no video
        raise UsageError(f"VIDEO {video}: cannot be read as a video ({str(err).splitlines()[0][:160]})") from None
    result = score_video(frames, task, family=family)
    click.echo(json.dumps(dataclasses.asdict(result), indent=2))
