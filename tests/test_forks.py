"""Forked trajectories in one process: a shared prefix run once, each variant continued from a snapshot, gives the
rows of the variant run from noise - bit-identical on CPU with the same batch - for noise at a step, swaps at a step
and an ensemble grid over merged step ranges (members fork together); the planner's groups and pass counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cos_ray.engine.call import make_scheduler
from cos_ray.engine.snapshot import Fork
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.interventions.configs import NoiseAtStepConfig

SPEC = """\
name: forks
model: {name: tiny, workers: 1}
tasks: {generate: {family: maze, n: 2, seed: 0}}
seeds: [0]
sampler: {steps: 6, frames: 5}
methods:
  - baseline
  - noise_at_step: {step: [2, 4]}
  - swap: {step: [2, 4], layer: 20}
  - ensemble: {size: 2, layers: 20-29, steps: {grid: [0-1, 0-2, 0-3]}, merge: update}
probes:
  x0: {every: 2}
"""


def write_spec(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "forks.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    return expand(load_spec(str(write_spec(tmp_path_factory.mktemp("forks")))))


class StepsRun:
    """Test intervention: the denoising steps each run's cond passes ran at (one list per run)."""

    def __init__(self):
        self.runs = []

    def __call__(self, run):
        from diffusers.hooks.hooks import ModelHook

        steps = []
        self.runs.append(steps)
        clock = run.clock

        class Count(ModelHook):
            def pre_forward(self, module, *args, **kwargs):
                if clock.branch == "cond":
                    steps.append(clock.step)
                return args, kwargs

        for name, module in run.experts.items():
            run.hooks.add(module, Count(), f"test.count.{name}")


def assert_same_members(forked, unforked):
    assert len(forked) == len(unforked)
    for one, other in zip(forked, unforked):
        assert one.seed == other.seed and one.member == other.member
        assert one.steps == other.steps  # every step's record: step, timestep, sigma, expert, x̂0 statistics
        assert torch.equal(one.final_latent, other.final_latent)
        assert np.array_equal(one.video, other.video)


@pytest.mark.parametrize("scheduler", ["flowmatch-euler", "unipc"])
def test_a_snapshot_resumes_the_trajectory_exactly_and_skips_the_steps_before_it(tiny_model, task, tiny_settings,
                                                                                  scheduler):
    settings = tiny_settings.replace(scheduler=scheduler, steps=5)
    trunk, counted = Fork(take={3}), StepsRun()
    clean = run_trajectory(tiny_model, task, settings, [5], fork=trunk, interventions=[counted])
    assert_same_members(clean, run_trajectory(tiny_model, task, settings, [5]))  # taking snapshots changes nothing
    noise = NoiseAtStepConfig(step=3)
    branch = run_trajectory(tiny_model, task, settings, [5], interventions=[noise.apply, counted],
                            fork=Fork(resume=trunk.taken[3]))
    assert_same_members(branch, run_trajectory(tiny_model, task, settings, [5], interventions=[noise.apply]))
    assert counted.runs == [[0, 1, 2, 3, 4], [3, 4]]  # the branch ran steps 3-4 only
    snapshot = trunk.taken[3]
    latent = clean[0].final_latent.numel() * 4  # float32 bytes of one member's latent
    fresh = make_scheduler(tiny_model, settings)  # the tables a scheduler has before any step: constant
    fresh.set_timesteps(settings.steps)
    constant = sum(value.numel() * value.element_size() for value in vars(fresh).values()
                   if isinstance(value, torch.Tensor) and value.dim() > 0)
    history = snapshot.nbytes - latent - constant  # what the scheduler keeps beyond its tables
    if scheduler == "flowmatch-euler":
        assert history == 0
    else:  # UniPC order 2: two model outputs, the last sample, two 0-d timesteps
        assert history == 3 * latent + 2 * 8


def test_a_resumed_batch_keeps_its_x0_latents_filmstrips_and_x0_change(tiny_model, task, tiny_settings):
    from cos_ray.engine.records import X0Config

    settings, x0 = tiny_settings.replace(steps=5), X0Config(every=1, decode_every=2, keep_latents=True)
    trunk, noise = Fork(take={3}), NoiseAtStepConfig(step=3)
    run_trajectory(tiny_model, task, settings, [5, 6], fork=trunk, x0=x0)
    forked = run_trajectory(tiny_model, task, settings, [5, 6], interventions=[noise.apply], x0=x0,
                            fork=Fork(resume=trunk.taken[3]))
    unforked = run_trajectory(tiny_model, task, settings, [5, 6], interventions=[noise.apply], x0=x0)
    assert_same_members(forked, unforked)  # x0_change at step 3 needs step 2's x̂0: from the snapshot
    for one, other in zip(forked, unforked):
        assert one.filmstrip_steps == other.filmstrip_steps == [0, 2, 4]
        assert np.array_equal(one.filmstrip, other.filmstrip)
        assert sorted(one.x0_latents) == list(range(5))
        assert all(torch.equal(one.x0_latents[step], other.x0_latents[step]) for step in range(5))


def test_the_planner_groups_units_that_share_a_prefix(units):
    from cos_ray.spec.forks import fork_groups, forward_passes

    groups = fork_groups(units)
    assert sorted(len(group) for group in groups) == [3, 3, 5, 5]  # per task: clean + 2 noises + 2 swaps; 3 ensembles
    for group in groups:
        starts = {(branch.unit.method, str(branch.unit.params.get("step", branch.unit.params.get("steps")))):
                  branch.start for branch in group.branches}
        if len(group) == 5:  # the clean run is the trunk; noise and swap at step s leave it at s
            assert starts == {("baseline", "None"): 0, ("noise_at_step", "2"): 2, ("noise_at_step", "4"): 4,
                              ("swap", "2"): 2, ("swap", "4"): 4}
        else:  # merged over 0-1, 0-2, 0-3: each range leaves the previous one where it stops merging
            assert starts == {("ensemble", "[0, 1]"): 0, ("ensemble", "[0, 1, 2]"): 2, ("ensemble", "[0, 1, 2, 3]"): 3}
    forked, unforked = forward_passes(groups)
    per_step = 2  # CFG: cond + uncond at every step of the tiny preset
    # per task: 5 runs of 6 steps + 2 runs B; 3 two-member ensembles
    assert unforked == 2 * per_step * ((5 * 6 + 2 * 6) + 3 * 2 * 6)
    assert forked == 2 * per_step * ((6 + 4 + 4 + 2 + 2 + 2 * 6) + 2 * (6 + 4 + 3))
    assert fork_groups(units, fork=False) and all(len(group) == 1 for group in fork_groups(units, fork=False))


def test_forked_groups_give_the_unforked_members(tiny_model, units):
    from cos_ray.probes.program import run_program
    from cos_ray.spec.forks import fork_groups
    from cos_ray.sweep.forks import run_fork_group

    task_of = units[0].task.identity
    groups = [group for group in fork_groups(units) if group.units[0].task.identity == task_of]
    for group in groups:
        loaded = [unit.loaded() for unit in group.units]
        for branch, unit in zip(group.branches, loaded):
            branch.unit = unit
        outcomes = run_fork_group(tiny_model, group)
        assert [outcome.error for outcome in outcomes] == [None] * len(group)
        assert [outcome.start for outcome in outcomes] == [branch.start for branch in group.branches]
        for outcome, unit in zip(outcomes, loaded):
            unforked = run_program(tiny_model, unit.task, unit.settings, list(unit.seeds), unit.program,
                                   ensemble=unit.ensemble, x0=unit.x0)
            assert_same_members(outcome.members, unforked)


class FailInEditedRun:
    """Test fault: raise at `step` in runs that edit the latent (the noise branches), not in the others."""

    def __init__(self, step: int):
        self.step = step

    def __call__(self, run):
        from diffusers.hooks.hooks import ModelHook

        from cos_ray.errors import UsageError

        if not run.latent_edits.edits:
            return
        clock, step = run.clock, self.step

        class Fail(ModelHook):
            def post_forward(self, module, output):  # after the expert's call: the clock is at this step
                if clock.step == step:
                    raise UsageError(f"fault drill at step {step}")
                return output

        for name, module in run.experts.items():
            run.hooks.add(module, Fail(), f"test.fail.{name}")


def test_a_failing_branch_fails_its_unit_only(tiny_model, units):
    from cos_ray.spec.forks import fork_groups
    from cos_ray.sweep.forks import run_fork_group

    group = next(group for group in fork_groups(units) if len(group) == 5)
    keep = [branch for branch in group.branches if branch.unit.method in ("baseline", "noise_at_step")]
    group.branches = keep  # clean (trunk), noise at 2, noise at 4
    outcomes = run_fork_group(tiny_model, group, interventions=[FailInEditedRun(step=3)])
    by_step = {branch.start: outcome for branch, outcome in zip(group.branches, outcomes)}
    assert "fault drill at step 3" in str(by_step[2].error)  # noise at 2 reaches step 3 and fails there
    assert by_step[0].error is None and by_step[4].error is None  # its siblings are whole
    assert by_step[4].start == 4


def test_plan_prints_the_passes_with_and_without_forking_and_submit_takes_no_fork(tmp_path):
    from click.testing import CliRunner

    from cos_ray.cli import main

    spec = write_spec(tmp_path)
    result = CliRunner().invoke(main, ["plan", str(spec), "--out", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    # the counts of test_the_planner_groups_units_that_share_a_prefix, worked out by hand there
    assert ("forward passes with companion runs (run B of a swap, the clean run of CKA): 312 without forking "
            "(--no-fork), 224 forked (0.718 of them); 16 units in 4 fork groups, 0 run alone") in result.output
    assert not (tmp_path / "results").exists()
    assert "--no-fork" in CliRunner().invoke(main, ["submit", "--help"]).output
