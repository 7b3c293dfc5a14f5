"""cos-ray trajectory time ÷ bare `WanImageToVideoPipeline.__call__` on the same tiny model, in one run.

Targets (issue 3): probes off <= 1.03, x̂0 captured at every step <= 1.10. The three variants are interleaved and the
median of each is taken, so drift on a shared machine hits them alike.

    python benchmarks/trajectory_overhead.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--model", default="tiny")
    args = parser.parse_args()

    import torch
    from PIL import Image

    torch.set_num_threads(1)
    from cos_ray.engine.call import configure_pipeline, pipeline_arguments
    from cos_ray.engine.records import X0Config
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.model.loader import load_pipeline
    from cos_ray.model.source import model_family
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import TaskInput

    model = load_pipeline(args.model)
    settings = default_settings(model_family(args.model))
    folder = Path(tempfile.mkdtemp())
    Image.new("RGB", (64, 64), "white").save(folder / "first_frame.png")
    task = TaskInput("bench", folder / "first_frame.png", "solve the maze")

    def bare():
        configure_pipeline(model, settings)
        with torch.inference_mode():
            model.pipe(**pipeline_arguments(model, task, settings, [0]))

    variants = {
        "bare pipeline": bare,
        "cos-ray, probes off": lambda: run_trajectory(model, task, settings, [0]),
        "cos-ray, x0 every step": lambda: run_trajectory(model, task, settings, [0], x0=X0Config(every=1)),
    }
    model.pipe.set_progress_bar_config(disable=True)
    for run in variants.values():  # warm-up
        run()
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["bare pipeline"])
    print(f"model={args.model} steps={settings.steps} frames={settings.frames} repeats={args.repeats} "
          f"threads={torch.get_num_threads()} cpus={os.cpu_count()}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:26s} median {median * 1000:8.1f} ms   ratio to bare {median / base:.3f}")


if __name__ == "__main__":
    main()
