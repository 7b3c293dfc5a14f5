"""A parallel layout on Ray workers: a group of 2 replicas x Ulysses-2 + FSDP2 (4 actors, one mesh), against the
in-process runs of the same units; and the CLI's refusals of a layout it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.cluster.waits import Timeouts
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.interventions.ensemble import EnsembleConfig

pytestmark = pytest.mark.timeout(300)

SEEDS = [5, 6]
ENSEMBLE = EnsembleConfig(size=2, layers="20-29", steps="0-1", merge="update")
TOLERANCE = 1e-5  # tiny preset: batching and sharding move the last bits only (see test_parallel_engine)


@pytest.fixture(scope="module")
def settings(tiny_settings):
    return tiny_settings.replace(steps=3, frames=5)


@pytest.fixture(scope="module")
def coordinator(ray_cluster, tiny_model):  # tiny_model first: the preset is written once, before the workers read it
    from cos_ray.cluster.coordinator import Coordinator

    coordinator = Coordinator("tiny", (1, 1), device="cpu", parallel={"ulysses": 2, "fsdp": True},
                              timeouts=Timeouts(start=120, load=240, join=60, collective=60, unit=240, control=30))
    yield coordinator
    coordinator.shutdown()


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def test_an_ensemble_on_a_2x2_mesh_and_a_single_seed_on_one_replica(coordinator, tiny_model, task, settings):
    group = coordinator.groups[0]
    assert (group.size, group.replicas) == (4, 2)  # 2 workers (replicas) x 2 actors each
    expected = run_trajectory(tiny_model, task, settings, SEEDS, ensemble=ENSEMBLE)
    members = coordinator.run_unit(task, settings, SEEDS, ensemble=ENSEMBLE, layout=(1, 1))
    assert [m.seed for m in members] == SEEDS and [m.member for m in members] == [0, 1]
    for member, reference in zip(members, expected):
        assert max_diff(member.final_latent, reference.final_latent.numpy()) <= TOLERANCE
        assert max_diff(member.video, reference.video) <= TOLERANCE
    (alone,) = coordinator.run_unit(task, settings, [SEEDS[0]], layout=(1,))  # replica 0's two ranks only
    (reference,) = run_trajectory(tiny_model, task, settings, [SEEDS[0]])
    assert max_diff(alone.final_latent, reference.final_latent.numpy()) <= TOLERANCE
    assert max_diff(alone.final_latent, members[0].final_latent) > 1e-4  # the merge mattered above


@pytest.mark.parametrize("arguments, message", [
    (["--fsdp"], "--ulysses/--fsdp.fsdp: shards the weights over a replica's ranks, so it needs ulysses >= 2"),
    (["--ulysses", "0"], "--ulysses/--fsdp.ulysses: expected an integer >= 1"),
])
def test_a_layout_that_cannot_run_is_refused_before_anything_starts(task_dir, tmp_path, arguments, message):
    result = CliRunner().invoke(main, ["generate", str(task_dir), "--out", str(tmp_path / "out"), *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_rank_that_dies_mid_unit_tears_the_mesh_down_and_the_unit_is_retried(coordinator, tiny_model, task,
                                                                               settings):
    """Runs last in the module: worker 3 (replica 1's second rank) exits at step 1 of the ensemble; the whole group
    goes (the other ranks wait in its collectives), a fresh one builds its mesh, and the retry equals the reference."""
    from cos_ray.cluster import faults
    from cos_ray.cluster.errors import GroupFailed
    from cos_ray.spec.unit import Unit

    built = coordinator.built
    faults.inject(coordinator.groups[0], 3, faults.ExitAt(step=1))
    outcome = coordinator.run_with_retries(Unit(task, settings, tuple(SEEDS), ENSEMBLE, layout=(1, 1)), retries=1)
    assert outcome.ok, outcome.error
    first, second = outcome.attempts
    assert isinstance(first.error, GroupFailed) and "the group was torn down" in str(first.error)
    assert second.error is None and coordinator.built == built + 1
    expected = run_trajectory(tiny_model, task, settings, SEEDS, ensemble=ENSEMBLE)
    for member, reference in zip(outcome.members, expected):
        assert max_diff(member.final_latent, reference.final_latent.numpy()) <= TOLERANCE
