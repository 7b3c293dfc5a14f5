"""Parallel layouts on real processes over gloo (no Ray): Ulysses-2, FSDP2 + Ulysses-2 and CFG-parallel against one
process.

One spawn of 4 ranks serves the module: a mesh of 2 replicas (seed axis) x 2 sequence shards (ulysses axis). Each
replica generates one seed's video alone (both replicas at once, no seed collective), on the tiny and the
tiny-reasoner presets, with Ulysses-2 and with FSDP2 + Ulysses-2; then the two replicas run a 2-seed ensemble merged
over the seed axis. The same ranks then form CFG-parallel meshes on the tiny preset: 2 replicas x 2 CFG sets (cond,
uncond), each replica alone, with the probe program, and a 2-seed ensemble merged among same-branch ranks; and one
replica of 2 CFG sets x FSDP2 + Ulysses-2. The parent computes every reference in its own process, with the engine
the CLI uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cos_ray.engine.records import X0Config
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.interventions.ensemble import EnsembleConfig
from parallel_ranks import run_ranks

pytestmark = pytest.mark.timeout(480)  # one 4-rank spawn serves the module; shared cores slow it severalfold

SEEDS = [3, 4]  # replica r generates SEEDS[r]; the ensemble merges both
PRESETS = ["tiny", "tiny-reasoner"]
LAYOUTS = {"ulysses2": dict(ulysses=2), "fsdp+ulysses2": dict(ulysses=2, fsdp=True)}
# CFG-parallel on 4 ranks: (seed 2, cfg 2, ulysses 1) and (seed 1, cfg 2, ulysses 2): each rank's replica and branch
CFG_LAYOUTS = {"cfg2": dict(cfg=True), "cfg2+fsdp+ulysses2": dict(cfg=True, ulysses=2, fsdp=True)}
CFG_PLACES = {"cfg2": [(0, 0), (0, 1), (1, 0), (1, 1)], "cfg2+fsdp+ulysses2": [(0, 0), (0, 0), (0, 1), (0, 1)]}
ENSEMBLE = dict(size=2, layers="20-29", steps="0-1", merge="update")
TOLERANCE = 1e-5  # float32; measured: bit-identical or last bits
# The in-process ensemble runs its seeds as one batch of 2, each replica as a batch of 1: batching alone moves the
# final latents by up to 3.0e-5 on tiny-reasoner (3.3e-6 on tiny; measured with no merge at all), and the merged run
# by 4.3e-5 (2.1x the batching difference of the same seeds). The ensemble is held to 3x the batching difference
# measured in the same session, and never to more than TOLERANCE where that is looser.


def program(probe_dir):
    """Noise at step 1, a swap of block 20's update over a masked region from task B, energy maps and CKA
    sensitivity at block 20: every hook kind that meets sequence shards."""
    from cos_ray.interventions.configs import NoiseAtStepConfig, SwapConfig
    from cos_ray.probes.configs import EnergyConfig
    from cos_ray.probes.program import Program
    from cos_ray.tasks.folder import read_task_folder

    return Program(noise_at_step=NoiseAtStepConfig(step=1),
                   swap=SwapConfig(layer=20, step="0-1", region=str(Path(probe_dir) / "mask.png")),
                   swap_source=read_task_folder(Path(probe_dir) / "task_b"),
                   energy=EnergyConfig(layers="20-21", steps="0-1"), sensitivity="blocks.20")


def forked(model, task, settings, seed):
    """A trunk snapshotted before step 2, then a branch resumed from it with noise at step 2 (forks per rank)."""
    from cos_ray.engine.snapshot import Fork
    from cos_ray.interventions.configs import NoiseAtStepConfig

    trunk = Fork(take={2})
    run_trajectory(model, task, settings, [seed], fork=trunk)
    (branch,) = run_trajectory(model, task, settings, [seed], interventions=[NoiseAtStepConfig(step=2).apply],
                               fork=Fork(resume=trunk.taken[2]))
    return branch.final_latent.numpy()


SEARCH = dict(candidates=2, select_at=1, keep=1, verifier="consensus")  # seeds SEEDS, one per replica


def searched(model, task, settings, mesh, replica) -> dict:
    """This replica's candidate of a search over SEEDS spread on the mesh's seed axis: judged over the axis (the
    x̂0 latents gathered), pruned or resumed from its own snapshot on sequence shards."""
    from cos_ray.cluster.collective import DistributedSeeds
    from cos_ray.engine import parallel
    from cos_ray.probes.search import SearchConfig, run_search

    seeds = DistributedSeeds([1, 1], replica, timeout_s=60, group=parallel.seed_group(mesh))
    (member,) = run_search(model, task, settings, [SEEDS[replica]], SearchConfig(**SEARCH), seed_group=seeds)
    return dict(replica=replica, member=member.member, stopped_at=member.stopped_at,
                latent=None if member.final_latent is None else member.final_latent.numpy())


def mesh_job(rank, world, task_dir, probe_dir, steps, frames):
    """One rank of the 2 x 2 mesh: every (preset, layout) alone, the probe program on the tiny preset's last layout,
    then the ensemble on the last layout."""
    import torch

    from cos_ray.cluster.collective import DistributedSeeds
    from cos_ray.engine import parallel
    from cos_ray.model.loader import load_pipeline
    from cos_ray.probes.program import run_program
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import read_task_folder

    task = read_task_folder(task_dir)
    settings = default_settings("tiny-a14b").replace(steps=steps, frames=frames)
    out = {}
    for preset in PRESETS:
        for name, options in LAYOUTS.items():
            model = load_pipeline(preset, device="cpu")
            layout = parallel.ParallelLayout(**options)
            mesh = parallel.device_mesh(layout)
            parallel.apply_layout(model.experts(), layout, mesh)
            replica = parallel.seed_rank(mesh)
            (alone,) = run_trajectory(model, task, settings, [SEEDS[replica]], x0=X0Config(keep_latents=True))
            out[(preset, name)] = dict(replica=replica, latent=alone.final_latent.numpy(),
                                       x0={step: x.numpy() for step, x in alone.x0_latents.items()})
        if preset == "tiny":
            (probed,) = run_program(model, task, settings, [SEEDS[replica]], program(probe_dir))
            out["program"] = dict(replica=replica, latent=probed.final_latent.numpy(), probes=probed.probes,
                                  fork=forked(model, task, settings, SEEDS[replica]))
            out["search"] = searched(model, task, settings, mesh, replica)
        seeds = DistributedSeeds([1, 1], replica, timeout_s=60, group=parallel.seed_group(mesh))
        (member,) = run_trajectory(model, task, settings, [SEEDS[replica]], ensemble=EnsembleConfig(**ENSEMBLE),
                                   seed_group=seeds)
        out[(preset, "ensemble")] = dict(replica=replica, member=member.member, latent=member.final_latent.numpy(),
                                         calls=seeds.calls)
        torch.distributed.barrier()
    out.update(cfg_runs(task, settings, probe_dir))
    return out


def cfg_runs(task, settings, probe_dir) -> dict:
    """CFG-parallel on the tiny preset (see the module docstring); {('cfg', layout[, what]): result}."""
    import torch

    from cos_ray.cluster.collective import DistributedSeeds
    from cos_ray.engine import parallel
    from cos_ray.model.loader import load_pipeline
    from cos_ray.probes.program import run_program

    out = {}
    for name, options in CFG_LAYOUTS.items():
        model = load_pipeline("tiny", device="cpu")
        layout = parallel.ParallelLayout(**options)
        mesh = parallel.device_mesh(layout)
        parallel.apply_layout(model.experts(), layout, mesh)
        place = dict(replica=parallel.seed_rank(mesh), branch=parallel.cfg_rank(mesh))
        (alone,) = run_trajectory(model, task, settings, [SEEDS[place["replica"]]], x0=X0Config(keep_latents=True))
        out[("cfg", name)] = dict(place, latent=alone.final_latent.numpy(),
                                  x0={step: x.numpy() for step, x in alone.x0_latents.items()})
        if mesh["seed"].size() == 2:
            seed = SEEDS[place["replica"]]
            (probed,) = run_program(model, task, settings, [seed], program(probe_dir))
            out[("cfg", name, "program")] = dict(place, latent=probed.final_latent.numpy(), probes=probed.probes,
                                                 fork=forked(model, task, settings, seed))
            out[("cfg", name, "search")] = searched(model, task, settings, mesh, place["replica"])
            seeds = DistributedSeeds([1, 1], place["replica"], timeout_s=60, group=parallel.seed_group(mesh))
            (member,) = run_trajectory(model, task, settings, [seed], ensemble=EnsembleConfig(**ENSEMBLE),
                                       seed_group=seeds)
            out[("cfg", name, "ensemble")] = dict(place, latent=member.final_latent.numpy(), calls=seeds.calls)
        torch.distributed.barrier()
    return out


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.fixture(scope="module")
def settings(tiny_settings):
    return tiny_settings.replace(steps=3, frames=5)  # 2 latent frames x 4 x 4 patches = 32 tokens, 16 per rank


@pytest.fixture(scope="module")
def ranks(tiny_model, task_dir, probe_dir, settings):  # tiny_model first: the preset is written once
    return run_ranks(4, mesh_job, timeout_s=400, task_dir=str(task_dir), probe_dir=str(probe_dir), steps=settings.steps,
                     frames=settings.frames)


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    """A region mask (the left half) and task B for the swap: the same prompt, another first frame."""
    from PIL import Image, ImageDraw

    folder = tmp_path_factory.mktemp("probes")
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle([0, 0, 31, 63], fill=255)
    mask.save(folder / "mask.png")
    (folder / "task_b").mkdir()
    other = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(other).rectangle([20, 0, 24, 50], fill="black")
    other.save(folder / "task_b" / "first_frame.png")
    (folder / "task_b" / "prompt.txt").write_text("draw the path from the green start to the red goal\n")
    return folder


@pytest.fixture(scope="module")
def references(task, settings, probe_dir):
    from cos_ray.model.loader import load_pipeline
    from cos_ray.probes.program import run_program

    found = {}
    for preset in PRESETS:
        model = load_pipeline(preset, device="cpu")
        found[preset] = dict(
            alone=[run_trajectory(model, task, settings, [seed], x0=X0Config(keep_latents=True))[0] for seed in SEEDS],
            ensemble=run_trajectory(model, task, settings, SEEDS, ensemble=EnsembleConfig(**ENSEMBLE)),
            batched=run_trajectory(model, task, settings, SEEDS),
        )
        if preset == "tiny":
            from cos_ray.probes.search import SearchConfig, run_search

            found["program"] = [run_program(model, task, settings, [seed], program(probe_dir))[0] for seed in SEEDS]
            found["fork"] = [forked(model, task, settings, seed) for seed in SEEDS]
            found["search"] = run_search(model, task, settings, SEEDS, SearchConfig(**SEARCH))
    return found


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("preset", PRESETS)
def test_a_sharded_replica_generates_the_one_process_video(ranks, references, preset, layout):
    for rank, result in enumerate(ranks):
        got = result[(preset, layout)]
        expected = references[preset]["alone"][got["replica"]]
        assert got["replica"] == rank // 2  # ranks 0, 1 hold replica 0; ranks 2, 3 replica 1
        assert max_diff(got["latent"], expected.final_latent.numpy()) <= TOLERANCE
        assert sorted(got["x0"]) == sorted(expected.x0_latents)  # x̂0 on the gathered output, every step
        for step, x0 in got["x0"].items():
            assert max_diff(x0, expected.x0_latents[step].numpy()) <= TOLERANCE


@pytest.mark.parametrize("preset", PRESETS)
def test_the_ensemble_merged_over_the_seed_axis_is_the_in_process_one(ranks, references, preset):
    expected = references[preset]["ensemble"]
    alone = references[preset]["alone"]
    batching = max(max_diff(batched.final_latent, single.final_latent)
                   for batched, single in zip(references[preset]["batched"], alone))
    tolerance = max(TOLERANCE, 3 * batching)
    for result in ranks:
        got = result[(preset, "ensemble")]
        assert got["member"] == got["replica"]
        assert got["calls"] > 0  # the merge ran over the seed axis
        assert max_diff(got["latent"], expected[got["replica"]].final_latent.numpy()) <= tolerance
        # the merge changed the video: the comparison is not the unmerged run's by accident
        assert max_diff(got["latent"], alone[got["replica"]].final_latent.numpy()) > 1e-4


def test_noise_swap_energy_cka_and_forks_on_sequence_shards_equal_the_unsharded_ones(ranks, references):
    for result in ranks:
        got = result["program"]
        expected = references["program"][got["replica"]]
        assert max_diff(got["latent"], expected.final_latent.numpy()) <= TOLERANCE
        assert max_diff(got["fork"], references["fork"][got["replica"]]) <= TOLERANCE  # resumed from its own snapshot
        energy, reference = got["probes"]["energy"], expected.probes["energy"]
        assert len(energy) == len(reference) == 2 * 2  # 2 steps x 2 layers (the expert running the step)
        for row, ref in zip(energy, reference):
            assert (row["step"], row["expert"], row["layer"], row["grid"]) == (
                ref["step"], ref["expert"], ref["layer"], ref["grid"])
            assert max_diff(row["map"], ref["map"]) <= TOLERANCE  # whole maps: the shards were gathered
            assert abs(row["energy_mean"] - ref["energy_mean"]) <= TOLERANCE
        cka, cka_reference = got["probes"]["sensitivity"], expected.probes["sensitivity"]
        assert [row["step"] for row in cka] == [row["step"] for row in cka_reference]
        for row, ref in zip(cka, cka_reference):
            assert abs(row["cka"] - ref["cka"]) <= 1e-4, (row, ref)


@pytest.mark.parametrize("layout", list(CFG_LAYOUTS))
def test_cfg_parallel_generates_the_one_process_video(ranks, references, layout):
    """Each rank computes one CFG branch of every transformer call, yet every rank forms the one-process guided
    prediction: the same final latent and x̂0 at every step, on both branches' ranks."""
    for rank, result in enumerate(ranks):
        got = result[("cfg", layout)]
        assert (got["replica"], got["branch"]) == CFG_PLACES[layout][rank]
        expected = references["tiny"]["alone"][got["replica"]]
        assert max_diff(got["latent"], expected.final_latent.numpy()) <= TOLERANCE
        assert sorted(got["x0"]) == sorted(expected.x0_latents)
        for step, x0 in got["x0"].items():
            assert max_diff(x0, expected.x0_latents[step].numpy()) <= TOLERANCE


def test_cfg_parallel_ensemble_merges_among_same_branch_ranks(ranks, references):
    """On (seed 2, cfg 2): the cond ranks merge the cond pass over the seed axis, the uncond ranks the uncond pass,
    as the in-process ensemble merges each branch over its seeds."""
    expected = references["tiny"]["ensemble"]
    for result in ranks:
        got = result[("cfg", "cfg2", "ensemble")]
        assert got["calls"] > 0  # this branch's merge ran over the seed axis
        assert max_diff(got["latent"], expected[got["replica"]].final_latent.numpy()) <= TOLERANCE
        assert max_diff(got["latent"], references["tiny"]["alone"][got["replica"]].final_latent.numpy()) > 1e-4


def test_noise_swap_energy_cka_and_forks_under_cfg_parallel_equal_the_one_process_ones(ranks, references):
    """Every rank ends on the reference latent; the cond set records the cond-branch probes (energy maps, CKA) whole,
    as the one-process run does; the uncond set records none (a worker group keeps its replica's first, cond, rank)."""
    for result in ranks:
        got = result[("cfg", "cfg2", "program")]
        expected = references["program"][got["replica"]]
        assert max_diff(got["latent"], expected.final_latent.numpy()) <= TOLERANCE
        assert max_diff(got["fork"], references["fork"][got["replica"]]) <= TOLERANCE
        if got["branch"] == 1:
            assert got["probes"]["energy"] == [] and got["probes"]["sensitivity"] == []
            continue
        for row, ref in zip(got["probes"]["energy"], expected.probes["energy"], strict=True):
            assert (row["step"], row["layer"]) == (ref["step"], ref["layer"])
            assert max_diff(row["map"], ref["map"]) <= TOLERANCE
        for row, ref in zip(got["probes"]["sensitivity"], expected.probes["sensitivity"], strict=True):
            assert abs(row["cka"] - ref["cka"]) <= 1e-4, (row, ref)


@pytest.mark.parametrize("where", ["search", ("cfg", "cfg2", "search")], ids=["fsdp+ulysses2", "cfg2"])
def test_a_search_over_the_seed_axis_keeps_and_ends_as_one_process(ranks, references, where):
    """Search composes with the parallel layouts: each replica holds one candidate; the verifier's inputs are gathered
    over the seed axis, so every rank prunes the one-process search's loser and the kept candidate, resumed from its
    own snapshot on sequence shards (or one CFG branch), ends on the one-process latent."""
    expected = references["search"]
    assert sorted(member.stopped_at is None for member in expected) == [False, True]  # one kept, one pruned
    for result in ranks:
        got = result[where]
        reference = expected[got["replica"]]
        assert got["member"] == got["replica"] and got["stopped_at"] == reference.stopped_at
        if reference.stopped_at is None:
            assert max_diff(got["latent"], reference.final_latent.numpy()) <= TOLERANCE
        else:
            assert got["latent"] is None
