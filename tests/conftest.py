"""Shared fixtures: one preset cache per test session, single-threaded torch, the tiny models loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def preset_cache(tmp_path_factory) -> Path:
    """Presets are written fresh for the session, so the tests exercise writing them too."""
    root = tmp_path_factory.mktemp("cos-ray-cache")
    os.environ["COS_RAY_CACHE"] = str(root)
    os.environ["COS_RAY_CPU_THREADS"] = "1"
    return root


@pytest.fixture(scope="session")
def tiny_model(preset_cache):
    """The A14B-shaped tiny preset, loaded through the loader. Do not mutate it: load your own copy instead."""
    import torch

    torch.set_num_threads(1)
    from cos_ray.model.loader import load_pipeline

    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_settings():
    from cos_ray.sampler import default_settings

    return default_settings("tiny-a14b")


@pytest.fixture(scope="session")
def short_settings(tiny_settings):
    """Short trajectories (4 steps, 5 frames, both experts run): for checks made per step, not per length."""
    return tiny_settings.replace(steps=4, frames=5)


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory) -> Path:
    """A task folder with a structured first frame (a white board, a black wall, a green and a red square)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 30, 40, 34], fill="black")
    draw.rectangle([4, 4, 12, 12], fill=(0, 200, 0))
    draw.rectangle([50, 50, 58, 58], fill=(220, 0, 0))
    folder = tmp_path_factory.mktemp("task")
    image.save(folder / "first_frame.png")
    (folder / "prompt.txt").write_text("draw the path from the green start to the red goal\n")
    return folder


@pytest.fixture(scope="session")
def task(task_dir):
    from cos_ray.tasks.folder import read_task_folder

    return read_task_folder(task_dir)


@pytest.fixture(scope="session")
def ray_cluster(preset_cache):
    """One local Ray cluster per test session (it takes 7-9 s to start): 4 logical CPUs on 2 cores, no dashboard.

    `address="local"` starts a fresh cluster even if another one runs on this machine. Token auth is disabled in the
    test environment only; the workers inherit `COS_RAY_CACHE` (set by `preset_cache`) from the driver.
    """
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    from cos_ray.cluster.connect import connect

    connect("local", num_cpus=4)  # what every driver does, on a cluster of its own
    yield ray
    ray.shutdown()


SMALL_SWEEP = """\
name: small
model: {name: tiny, workers: 1, groups: 2}
tasks: {generate: {family: maze, n: 2, seed: 0}}
seeds: SEEDS
sampler: {steps: 4, frames: 5}
methods:
  - baseline
  - ensemble: {size: 2, layers: 20-29, steps: 0-1, merge: update}
probes:
  x0: {every: 2, decode: true}
"""


def write_small_sweep(folder: Path, seeds="[0, 1]", name: str = "small.yaml") -> Path:
    """A small real sweep on the tiny preset: 2 generated mazes x seeds x (baseline, 2-member ensemble), 4 steps."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(SMALL_SWEEP.replace("SEEDS", seeds))
    return path


@pytest.fixture(scope="session")
def small_sweep(ray_cluster, tmp_path_factory):
    """A store made by a real sweep of `write_small_sweep` (8 units, 12 runs) on the session cluster. Read only.

    Returns (spec path, store path, SweepReport).
    """
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("small-sweep")
    spec = write_small_sweep(folder)
    store = folder / "results"
    report = run_sweep(str(spec), str(store), progress=False)
    assert report.status == "done", report
    return spec, store, report
