"""Training samples streamed from cos-ray's own task generators, deterministic per (seed, sample index).

Sample i of a run with seed s is drawn from `numpy.random.default_rng([TRAIN_SEED_BASE + s, i])`; `cos-ray tasks
generate --seed S` draws sample i from `default_rng([S, i])`. Evaluation seeds below TRAIN_SEED_BASE therefore never
share a generator stream with training (the same maze may still come up by chance: the model card counts how often).
"""

from __future__ import annotations

import numpy as np

from cos_ray.tasks.families import get_family
from cos_ray.tasks.generation import family_params
from cos_ray.training.config import DataConfig

TRAIN_SEED_BASE = 1_000_000


def training_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([TRAIN_SEED_BASE + seed, index])


def draw_samples(data: DataConfig, seed: int, indices) -> list:
    """The generator's samples (`GeneratedSample`) for these sample indices of the training stream."""
    family = get_family(data.family)
    params = family_params(data.family, **data.generator_params())
    return [family.generate(training_rng(seed, int(i)), params) for i in indices]


def videos_tensor(samples):
    """`# (batch, 3, frames, H, W)` float32 in [-1, 1]: the ground-truth videos as the VAE reads them."""
    import torch

    frames = np.stack([s.frames for s in samples])  # (batch, frames, H, W, 3) uint8
    video = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float()  # (batch, 3, frames, H, W)
    return video / 127.5 - 1.0


def sample_key(sample) -> str:
    """What makes two maze samples the same problem (walls are decided by the first frame, plus start and goal)."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(sample.frames[0]).tobytes()).hexdigest()[:16]
