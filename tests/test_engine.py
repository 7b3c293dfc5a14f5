"""The engine on the tiny preset: hooks, x̂0 records, the in-process ensemble in both merge modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.hooks.hooks import ModelHook

from cos_ray.engine.call import sample
from cos_ray.engine.hook_points import block_module, resolve_hook_point
from cos_ray.engine.hooks import has_cos_ray_hooks
from cos_ray.engine.records import X0Config
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.errors import UsageError
from cos_ray.interventions.ensemble import EnsembleConfig

SEEDS = [11, 12, 13]


class CaptureOutputs(ModelHook):
    """Test instrument: keeps a block's output `# (batch, seq, dim)` per (step, branch)."""

    def __init__(self, clock, store, layer):
        super().__init__()
        self.clock, self.store, self.layer = clock, store, layer

    def post_forward(self, module, output):
        self.store[(self.clock.step, self.clock.branch, self.layer)] = output.clone()
        return output


def capture_high_blocks(store, layers):
    def apply(run):
        for layer in layers:
            module = run.experts["high"].blocks[layer]
            run.hooks.add(module, CaptureOutputs(run.clock, store, layer), f"test.capture.{layer}")

    return apply


@pytest.fixture(scope="module")
def singles(tiny_model, task, tiny_settings):
    """Each seed run alone: the independent reference of the ensemble."""
    return [run_trajectory(tiny_model, task, tiny_settings, [seed])[0] for seed in SEEDS]


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def test_trajectory_without_probes_is_the_bare_pipeline(tiny_model, task, tiny_settings):
    bare = sample(tiny_model, task, tiny_settings, [5])
    (result,) = run_trajectory(tiny_model, task, tiny_settings, [5])
    assert np.array_equal(result.video, bare[0])
    assert [record["step"] for record in result.steps] == list(range(tiny_settings.steps))
    experts = [record["expert"] for record in result.steps]
    assert experts[0] == "high" and experts[-1] == "low" and experts == sorted(experts)  # high..., then low...
    sigmas = [record["sigma"] for record in result.steps]
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[0] <= 1.0
    assert not has_cos_ray_hooks(tiny_model.pipe.transformer) and not has_cos_ray_hooks(tiny_model.pipe.transformer_2)


def test_empty_step_range_equals_separate_runs(tiny_model, task, tiny_settings, singles):
    ensemble = EnsembleConfig(size=3, steps="none")
    members = run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=ensemble)
    assert [member.seed for member in members] == SEEDS and [member.member for member in members] == [0, 1, 2]
    for member, single in zip(members, singles):
        assert max_diff(member.video, single.video) < 1e-5  # batching changes the last bits only


def test_merge_over_one_seed_is_the_single_run_bit_for_bit(tiny_model, task, tiny_settings, singles):
    """An ensemble of one is refused (it is the baseline); the merge over a group of one seed changes nothing."""
    from cos_ray.engine.hook_points import every_expert
    from cos_ray.interventions.cross_seed import CrossSeed, MeanOperator, apply_cross_seed

    merge = CrossSeed(MeanOperator(), tuple(every_expert(range(20, 30))), frozenset({0, 1}))
    (member,) = run_trajectory(tiny_model, task, tiny_settings, [SEEDS[0]],
                               interventions=[lambda run: apply_cross_seed(run, merge)])
    assert np.array_equal(member.video, singles[0].video)
    with pytest.raises(UsageError, match=r"ensemble.size: expected an integer >= 2 \(an ensemble of one is"):
        EnsembleConfig(size=1)


def test_ensemble_changes_the_members(tiny_model, task, tiny_settings, singles):
    members = run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(size=3))
    assert all(max_diff(member.video, single.video) > 1e-4 for member, single in zip(members, singles))


def test_stream_merge_makes_later_blocks_identical_then_members_diverge(tiny_model, task, tiny_settings):
    store = {}
    layers = [10, 19, 20, 25, 39]
    run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(size=3, steps="0-1"),
                   interventions=[capture_high_blocks(store, layers)])
    for step in (0, 1):
        for branch in ("cond", "uncond"):
            for layer in layers:
                output = store[(step, branch, layer)]  # (seeds, seq, dim)
                spread = float((output - output[:1]).abs().max())
                if layer >= 20:
                    assert spread < 1e-6, (step, branch, layer, spread)
                else:
                    assert spread > 1e-4, (step, branch, layer, spread)
    after = store[(3, "cond", 20)]
    assert float((after - after[:1]).abs().max()) > 1e-4


def test_stream_range_acts_as_its_first_layer(tiny_model, task, tiny_settings):
    full = run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(layers="20-29"))
    first = run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(layers="20"))
    for a, b in zip(full, first):
        assert max_diff(a.video, b.video) < 1e-5  # the mean of equal rows differs from them in the last bit only


def test_update_merge_every_layer_counts(tiny_model, task, short_settings):
    """11 ensembles: on short trajectories (4 steps, 5 frames; the merge at step 0), where dropping any one layer
    moves the video by 3e-4 to 9e-4 (measured), far above the bound."""
    full = run_trajectory(tiny_model, task, short_settings, SEEDS, ensemble=EnsembleConfig(merge="update"))
    for dropped in range(20, 30):
        layers = [layer for layer in range(20, 30) if layer != dropped]
        partial = run_trajectory(tiny_model, task, short_settings, SEEDS,
                                 ensemble=EnsembleConfig(merge="update", layers=layers))
        assert max(max_diff(a.video, b.video) for a, b in zip(full, partial)) > 1e-6, dropped


@pytest.mark.parametrize("scheduler", ["unipc", "euler"])
def test_last_x0_equals_final_latent(tiny_model, task, tiny_settings, scheduler):
    settings = tiny_settings.replace(scheduler=scheduler)
    (result,) = run_trajectory(tiny_model, task, settings, [3], x0=X0Config(every=2, keep_latents=True))
    last = settings.steps - 1
    assert sorted(result.x0_latents) == [0, 2, 4, 6, 8, last]
    assert torch.equal(result.x0_latents[last], result.final_latent)
    assert result.steps[0]["x0_change"] is None and result.steps[2]["x0_change"] > 0
    assert "x0_mean" not in result.steps[1]


def test_filmstrip_is_bounded(tiny_model, task, tiny_settings):
    x0 = X0Config(every=1, decode_every=4, max_frames=3, max_side=32)
    (result,) = run_trajectory(tiny_model, task, tiny_settings, [3], x0=x0)
    assert result.filmstrip_steps == [0, 4, 8, 9]
    assert result.filmstrip.shape == (4, 3, 32, 32, 3) and result.filmstrip.dtype == np.uint8
    last_row = result.filmstrip[-1].astype(float)  # decoded x̂0 of the last step is the video itself
    video = (result.video[[0, 4, 8]] * 255).reshape(3, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    assert np.abs(last_row - video).mean() < 2.0


def test_ti2v_x0_restores_the_first_frame(preset_cache, task):
    from cos_ray.model.loader import load_pipeline
    from cos_ray.sampler import default_settings

    model = load_pipeline("tiny-ti2v", device="cpu")
    (result,) = run_trajectory(model, task, default_settings("tiny-ti2v"), [0], x0=X0Config(keep_latents=True))
    first_frames = torch.stack([result.x0_latents[step][:, 0] for step in sorted(result.x0_latents)])
    assert torch.equal(first_frames, first_frames[:1].expand_as(first_frames))  # the condition, at every step


def test_hook_name_typos_list_what_is_valid(tiny_model, task, tiny_settings):
    with pytest.raises(UsageError, match=r"unknown hook point 'blcks.20'; valid: high.blocks.0-39, low.blocks.0-39"):
        resolve_hook_point(tiny_model.pipe, "blcks.20")
    with pytest.raises(UsageError, match=r"layer 45 is out of range; valid:"):
        resolve_hook_point(tiny_model.pipe, "low.blocks.45")
    assert [p.name for p in resolve_hook_point(tiny_model.pipe, "blocks.20")] == ["high.blocks.20", "low.blocks.20"]
    with pytest.raises(UsageError, match=r"ensemble.layers: '40-45' reaches layer 45, out of range 0-39"):
        run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(layers="40-45"))
    with pytest.raises(UsageError, match=r"ensemble.steps: '0-12' reaches step 12, out of range 0-9"):
        run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(steps="0-12"))


class Explode(ModelHook):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def post_forward(self, module, output):
        if self.clock.step == 3:
            raise RuntimeError("boom at step 3")
        return output


def test_hooks_are_removed_after_a_run_that_raised(tiny_model, task, tiny_settings, singles):
    def explode(run):
        run.hooks.add(block_module(run.pipe, resolve_hook_point(run.pipe, "high.blocks.5")[0]), Explode(run.clock), "x")

    with pytest.raises(RuntimeError, match="boom at step 3"):
        run_trajectory(tiny_model, task, tiny_settings, SEEDS, ensemble=EnsembleConfig(), interventions=[explode],
                       x0=X0Config())
    pipe = tiny_model.pipe
    assert not has_cos_ray_hooks(pipe.transformer) and not has_cos_ray_hooks(pipe.transformer_2)
    assert "step" not in vars(pipe.scheduler)
    (again,) = run_trajectory(tiny_model, task, tiny_settings, [SEEDS[0]])
    assert np.array_equal(again.video, singles[0].video)
