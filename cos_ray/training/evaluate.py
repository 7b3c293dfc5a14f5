"""Held-out evaluation of a trained pipeline through cos-ray's own inference path.

The held-out samples are written by `cos-ray tasks generate` (seed S < TRAIN_SEED_BASE: never a training stream),
read back as task folders and sampled with `cos_ray.engine.call.sample` under the model family's default sampler - the
path every sweep takes. Each video is judged by `solved.judge` (family threshold AND the ground-truth path). Beside
the model: `first_frame` (the input held, the trivial baseline) and `vae_round_trip` (the ground truth encoded and
decoded by the model's own VAE: the ceiling the VAE allows).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cos_ray.training.config import DataConfig
from cos_ray.training.data import TRAIN_SEED_BASE

VALIDATION_SEED = 2  # checkpoint selection during training
TEST_SEED = 1  # the model card's held-out table; never looked at before a checkpoint is chosen


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def held_out_tasks(root: Path, seed: int, n: int, data: DataConfig) -> list[Path]:
    """The n samples of `cos-ray tasks generate maze --seed SEED` in the training distribution (written once)."""
    from cos_ray.errors import UsageError
    from cos_ray.tasks.generation import generate_tasks

    if seed >= TRAIN_SEED_BASE:
        raise UsageError(f"seed: held-out seeds must be below {TRAIN_SEED_BASE} (training streams), got {seed}")
    folder = Path(root) / f"seed-{seed}"
    existing = sorted((folder / "In-Domain_50" / data.family).glob("[0-9]*"))
    if len(existing) >= n:
        return existing[:n]
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return generate_tasks(data.family, n, seed, folder, **data.generator_params())


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def ground_truth_frames(folder: Path, meta: dict, first: np.ndarray) -> np.ndarray:
    """The sample's frames `# (frames, H, W, 3)` uint8 exactly (drawn again from (seed, index): the mp4 is lossy)."""
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.generation import family_params

    sample = get_family(meta["family"]).generate(np.random.default_rng([meta["seed"], int(Path(folder).name)]),
                                                 family_params(meta["family"], **meta["params"]))
    if not np.array_equal(sample.frames[0], first):
        raise ValueError(f"{folder}: first_frame.png is not the generator's sample (seed {meta['seed']})")
    return sample.frames


def vae_round_trip(pipe, frames: np.ndarray) -> np.ndarray:
    """`# (frames, H, W, 3)` uint8 -> the same through the pipeline's VAE (mode latent), uint8."""
    import torch
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

    video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # (1, 3, frames, H, W)
    with torch.no_grad():
        z = retrieve_latents(pipe.vae.encode(video.to(pipe.vae.device)), sample_mode="argmax")
        out = pipe.vae.decode(z).sample[0]  # (3, frames, H, W)
    return ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).cpu().numpy()


def evaluate(model, folders: list[Path], *, seed: int = 0, settings=None, methods=("model", "first_frame"),
             progress: bool = False) -> list[dict]:
    """One row per (task, method): score, path_correct, solved. `model` a LoadedModel (methods other than
    first_frame need it)."""
    from cos_ray.engine.call import sample
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import read_task_folder
    from cos_ray.figures.maze_route import judge, to_uint8

    settings = settings or default_settings("tiny-a14b")
    rows = []
    for index, folder in enumerate(folders):
        task = read_task_folder(folder)
        meta = task.meta()
        first, final = _read_png(task.image_path), _read_png(task.final_frame_path)
        for method in methods:
            if method == "model":
                video = to_uint8(sample(model, task, settings, [seed])[0])  # (frames, H, W, 3)
            elif method == "first_frame":
                video = np.repeat(first[None], settings.frames, axis=0)
            elif method == "vae_round_trip":
                video = vae_round_trip(model.pipe, ground_truth_frames(folder, meta, first))
            else:
                raise ValueError(f"unknown method {method!r}")
            verdict = judge(video, first, final, meta)
            rows.append({"task": task.task_id, "index": index, "method": method, "seed": seed,
                         "score": verdict["score"], "path_correct": verdict["path_correct"],
                         "solved": verdict["solved"], **{f"d_{k}": v for k, v in verdict["details"].items()}})
        if progress and (index + 1) % 10 == 0:
            print(f"  {index + 1}/{len(folders)} tasks", flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    """{method: {n, solved, solved_ci95, path_correct, mean_score}}."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        solved = sum(r["solved"] for r in mine)
        out[method] = {"n": len(mine), "solved": solved / len(mine), "solved_ci95": wilson(solved, len(mine)),
                       "path_correct": sum(r["path_correct"] for r in mine) / len(mine),
                       "mean_score": float(np.mean([r["score"] for r in mine]))}
    return out


def main(argv=None) -> int:
    """python -m cos_ray.training.evaluate MODEL --seed 1 --n 100 --out DIR: the held-out table as JSON."""
    import argparse
    import sys

    from cos_ray.errors import run_reporting_errors

    parser = argparse.ArgumentParser(prog="python -m cos_ray.training.evaluate", description=main.__doc__)
    parser.add_argument("model", help="tiny-reasoner, or a run's export/ directory")
    parser.add_argument("--seed", type=int, default=TEST_SEED, help="held-out task seed (cos-ray tasks generate)")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--run-seed", type=int, default=0, help="the sampler's seed for every task")
    parser.add_argument("--out", required=True, help="folder for tasks/, rows.jsonl and summary.json")
    parser.add_argument("--methods", default="model,first_frame,vae_round_trip")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    def body():
        import torch

        from cos_ray.model.loader import load_pipeline

        torch.set_num_threads(args.threads)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        folders = held_out_tasks(out / "tasks", args.seed, args.n, DataConfig())
        methods = tuple(args.methods.split(","))
        model = load_pipeline(args.model, device="cpu") if methods != ("first_frame",) else None
        rows = evaluate(model, folders, seed=args.run_seed, methods=methods, progress=True)
        summary = {"model": args.model, "task_seed": args.seed, "n": args.n, "run_seed": args.run_seed,
                   "methods": summarise(rows)}
        (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary["methods"], indent=2))

    return run_reporting_errors(body)


if __name__ == "__main__":
    raise SystemExit(main())
