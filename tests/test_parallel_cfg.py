"""CFG-parallel on Ray workers: one replica of 2 actors (the cond set and the uncond set, one mesh over gloo) generates
the one-process video; and what cannot run CFG-parallel is refused before anything starts (exit 2, the field named):
guidance 1 (no uncond pass) in `cos-ray generate` and in a spec, and a GPU count the layout does not divide in
`cos-ray plan`. The composition with Ulysses, FSDP2 and the seed-axis merge is in tests/test_parallel_engine.py."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.cluster.waits import Timeouts
from cos_ray.engine.trajectory import run_trajectory

pytestmark = pytest.mark.timeout(300)

SEED = 7
TOLERANCE = 1e-5  # float32; measured: bit-identical (each set computes its branch exactly as one process does)


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def test_a_cfg_parallel_replica_of_two_actors_generates_the_one_process_video(ray_cluster, tiny_model, task,
                                                                               short_settings):
    from cos_ray.cluster.coordinator import Coordinator

    (reference,) = run_trajectory(tiny_model, task, short_settings, [SEED])
    with Coordinator("tiny", (1,), device="cpu", parallel={"cfg": True},
                     timeouts=Timeouts(start=120, load=240, join=60, collective=60, unit=240, control=30)) as coordinator:
        group = coordinator.groups[0]
        assert (group.size, group.replicas) == (2, 1)  # the cond set and the uncond set of one replica
        (member,) = coordinator.run_unit(task, short_settings, [SEED])
    assert member.seed == SEED
    assert max_diff(member.final_latent, reference.final_latent.numpy()) <= TOLERANCE
    assert max_diff(member.video, reference.video) <= TOLERANCE


@pytest.mark.parametrize("arguments, message", [
    (["--cfg-parallel", "--guidance", "1"], "--cfg-parallel: CFG-parallel runs the cond and uncond passes on two rank "
                                            "sets, but guidance 1 makes no uncond pass"),
    (["--cfg-parallel", "--fsdp"], "--ulysses/--fsdp.fsdp: shards the weights over a replica's ranks, so it needs "
                                   "ulysses >= 2"),
])
def test_generate_refuses_a_cfg_parallel_run_it_cannot_make(task_dir, tmp_path, arguments, message):
    result = CliRunner().invoke(main, ["generate", str(task_dir), "--out", str(tmp_path / "out"), *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_spec_asking_cfg_parallel_with_guidance_1_is_refused(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: cfg\nmodel: {name: tiny, workers: 1, parallel: {cfg: true}}\n"
                    "tasks: {generate: {family: maze, n: 1, seed: 0}}\nseeds: [0]\n"
                    "sampler: {steps: 2, frames: 5, guidance: 1.0}\nmethods: [baseline]\n")
    result = CliRunner().invoke(main, ["spec", "check", str(spec)])
    assert result.exit_code == 2, result.output
    assert "model.parallel.cfg: CFG-parallel runs the cond and uncond passes on two rank sets, but guidance 1 " \
           "makes no uncond pass" in result.output
    assert "Traceback" not in result.output
