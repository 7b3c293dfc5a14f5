"""The sharded-loading path on CPU: a balanced device map over two slots, both the CPU, keeps blocks whole."""

from __future__ import annotations

import logging

import numpy as np
import torch

from cos_ray.engine.trajectory import run_trajectory
from cos_ray.model.loader import load_pipeline
from cos_ray.model.sharding import balanced_device_map, sharded_device_maps
from cos_ray.model.source import model_directory


def test_balanced_map_keeps_blocks_whole_and_uses_every_device(preset_cache):
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    plan = balanced_device_map(model_directory("tiny"), "transformer", ["dev0", "dev1"], torch.float32)
    block_keys = [key for key in plan if key.startswith("blocks.")]
    assert all(key.count(".") == 1 for key in block_keys)  # whole blocks, never a block's submodule
    assert len(block_keys) == 40
    devices = [plan[f"blocks.{index}"] for index in range(40)]
    assert set(devices) == {"dev0", "dev1"} and devices == sorted(devices)  # contiguous halves
    assert 10 <= devices.count("dev0") <= 30


def test_model_loaded_with_device_maps_runs_like_the_unsharded_one(preset_cache, task, tiny_settings):
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    directory = model_directory("tiny")
    maps = sharded_device_maps(directory, ("transformer", "transformer_2"), ["cpu", "cpu"], torch.float32)
    sharded = load_pipeline("tiny", device="cpu", device_map=maps)
    plain = load_pipeline("tiny", device="cpu")
    assert hasattr(sharded.pipe.transformer, "hf_device_map")
    (a,) = run_trajectory(sharded, task, tiny_settings, [2])
    (b,) = run_trajectory(plain, task, tiny_settings, [2])
    assert np.abs(a.video - b.video).max() < 1e-6


def test_a_worker_given_several_devices_loads_each_expert_sharded(preset_cache, task, tiny_settings):
    """The worker's sharded-loading path (what it does when it sees several GPUs), over two CPU slots, in process."""
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    from cos_ray.cluster.worker import SeedWorker, shard_devices

    assert shard_devices("cpu") is None  # CPU workers, and workers with one GPU, load whole experts
    worker = SeedWorker()
    info = worker.load("tiny", "cpu", shard=["cpu", "cpu"])
    assert list(info.shard) == ["cpu", "cpu"]
    for expert in (worker.model.pipe.transformer, worker.model.pipe.transformer_2):
        blocks = {key for key in expert.hf_device_map if key.startswith("blocks.")}
        assert blocks and all(key.count(".") == 1 for key in blocks)  # whole blocks
    worker.counts = [1]
    (member,) = worker.run(task, tiny_settings.replace(steps=2), [3])
    (plain,) = run_trajectory(load_pipeline("tiny", device="cpu"), task, tiny_settings.replace(steps=2), [3])
    assert np.abs(member.video - plain.video).max() < 1e-6


def test_an_offloaded_model_runs_like_the_resident_one(preset_cache, task, tiny_settings):
    """The one-GPU offload path (diffusers' model CPU offload, every component moved to the device when it runs),
    with CPU as the device: both experts hooked, an ensemble and mid-loop filmstrip decodes give the same videos."""
    from cos_ray.engine.records import X0Config
    from cos_ray.interventions.configs import EnsembleConfig

    offloaded = load_pipeline("tiny", device="cpu", offload=True)
    plain = load_pipeline("tiny", device="cpu")
    assert offloaded.offload and not plain.offload
    for expert in (offloaded.pipe.transformer, offloaded.pipe.transformer_2):
        assert hasattr(expert, "_hf_hook")  # accelerate's offload hook, beside cos-ray's block hooks
    options = dict(ensemble=EnsembleConfig(size=2, layers="20-29", steps="0-1", merge="update"), x0=X0Config(decode_every=2))
    a = run_trajectory(offloaded, task, tiny_settings, [2, 3], **options)
    b = run_trajectory(plain, task, tiny_settings, [2, 3], **options)
    for got, expected in zip(a, b):
        assert np.abs(got.video - expected.video).max() < 1e-6
        assert got.filmstrip is not None and np.array_equal(got.filmstrip, expected.filmstrip)


def test_offload_and_device_maps_exclude_each_other(preset_cache):
    import pytest

    from cos_ray.errors import CheckpointError

    maps = sharded_device_maps(model_directory("tiny"), ("transformer",), ["cpu", "cpu"], torch.float32)
    with pytest.raises(CheckpointError, match="offload"):
        load_pipeline("tiny", device="cpu", device_map=maps, offload=True)
