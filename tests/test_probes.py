"""The Chain-of-Steps probes on the tiny preset: noise at step / frame, CKA sensitivity, energy maps, latent swap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cos_ray.engine.records import X0Config
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.errors import UsageError
from cos_ray.interventions.noise import (
    NoiseAtFrameConfig,
    NoiseAtStepConfig,
    apply_noise_at_frame,
    apply_noise_at_step,
    noise_at_frame_edit,
)
from cos_ray.interventions.swap import CopyOperator, LatentSwap, SwapConfig
from cos_ray.probes.cka import linear_cka, sensitivity
from cos_ray.probes.configs import EnergyConfig
from cos_ray.probes.energy import EnergyProbe
from cos_ray.probes.states import StateCapture
from cos_ray.tasks.folder import TaskInput

SEED = 21


def noise_at_step(config):
    return lambda run: apply_noise_at_step(run, config)


def noise_at_frame(config):
    return lambda run: apply_noise_at_frame(run, config)


@pytest.fixture(scope="module")
def clean(tiny_model, task, tiny_settings):
    latents = StateCapture("latents")
    (result,) = run_trajectory(tiny_model, task, tiny_settings, [SEED], x0=X0Config(keep_latents=True),
                               interventions=[latents])
    return result, latents.states[0]


def test_identity_latent_edit_is_the_clean_run_bit_for_bit(tiny_model, task, tiny_settings, clean):
    """Routing the latents through the edits (initial noise drawn here, every later step edited) changes nothing
    by itself; a strength of 0 is refused (it is the clean run)."""
    def identity(run):
        run.latent_edits.add(lambda step, latents: latents)

    (result,) = run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[identity])
    assert np.array_equal(result.video, clean[0].video)
    with pytest.raises(UsageError, match=r"noise_at_step.strength: expected a number in \(0, 1\]"):
        NoiseAtStepConfig(step=0, strength=0.0)


def test_noise_at_step_changes_nothing_before_the_step(tiny_model, task, tiny_settings, clean):
    latents = StateCapture("latents")
    (noisy,) = run_trajectory(tiny_model, task, tiny_settings, [SEED], x0=X0Config(keep_latents=True),
                              interventions=[noise_at_step(NoiseAtStepConfig(step=4, seed=1)), latents])
    for step in range(4):
        assert torch.equal(noisy.x0_latents[step], clean[0].x0_latents[step])
    injected = latents.states[0][4]  # (tokens, channels): x_4 was replaced by N(0, I)
    assert not torch.equal(injected, clean[1][4]) and abs(float(injected.std()) - 1.0) < 0.1
    assert np.abs(noisy.video - clean[0].video).max() > 1e-3
    rows = sensitivity(clean[1], latents.states[0])
    assert [row["cka_dissimilarity"] for row in rows[:4]] == [0.0] * 4
    assert all(row["cka_dissimilarity"] > 1e-4 for row in rows[4:])


def test_noise_at_frame_touches_only_that_frame(tiny_model, task, tiny_settings, clean):
    latents = torch.randn(2, 16, 3, 8, 8)
    edited = noise_at_frame_edit(NoiseAtFrameConfig(frame=1, strength=0.5), [1, 2])(0, latents)
    unchanged = [0, 2]
    assert torch.equal(edited[:, :, unchanged], latents[:, :, unchanged])
    assert not torch.equal(edited[:, :, 1], latents[:, :, 1])

    capture = StateCapture("latents")
    (noisy,) = run_trajectory(tiny_model, task, tiny_settings, [SEED],
                              interventions=[noise_at_frame(NoiseAtFrameConfig(frame=2, seed=3)), capture])
    grid = (3, 8, 8)  # latent frames, h, w of 9 frames at 64x64
    first = (capture.states[0][0] - clean[1][0]).abs().reshape(*grid, -1)  # step 0: only the injection differs
    assert float(first[:2].max()) == 0.0 and float(first[2].min()) > 0.0
    assert np.abs(noisy.video - clean[0].video).max() > 1e-3
    with pytest.raises(UsageError, match=r"noise_at_frame.frame: latent frame 5 is out of range 0-2"):
        run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[noise_at_frame(NoiseAtFrameConfig(5))])


def test_cka_of_a_run_with_itself_is_zero_dissimilarity(clean):
    rows = sensitivity(clean[1], clean[1])
    assert [row["cka_dissimilarity"] for row in rows] == [0.0] * 10
    x = torch.randn(64, 16)
    assert abs(linear_cka(x, 3.0 * x @ torch.linalg.qr(torch.randn(16, 16))[0] + 1.0) - 1.0) < 1e-9  # invariances
    assert linear_cka(x, torch.randn(64, 16)) < 0.9


def test_energy_maps_have_the_grid_shape_and_see_the_mask(tiny_model, task, tiny_settings):
    mask = np.zeros((64, 64))
    mask[:32] = 1.0
    probe = EnergyProbe(EnergyConfig(layers="0-1", steps="0-2", max_side=2), foreground_mask=mask)
    run_trajectory(tiny_model, task, tiny_settings, [SEED, SEED + 1], interventions=[probe])
    assert len(probe.rows) == 2 * 3 * 2  # members x steps x layers
    row = probe.rows[0]
    assert row["grid"] == [3, 4, 4] and row["map"].shape == (3, 2, 2) and len(row["frame_means"]) == 3
    assert row["fg_bg_ratio"] > 0 and row["energy_mean"] > 0
    full = EnergyProbe(EnergyConfig(layers="39", steps="9"))
    run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[full])
    (last,) = full.rows
    assert last["map"].shape == (3, 4, 4) and last["expert"] == "low" and last["fg_bg_ratio"] is None
    assert np.isclose(last["map"].mean(), last["energy_mean"], rtol=1e-5)


def test_stream_swap_makes_a_equal_b_at_that_layer_and_step(tiny_model, task, tiny_settings, tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64), (30, 30, 200)).save(tmp_path / "other.png")
    task_b = TaskInput("b", tmp_path / "other.png", "find the shortest path")
    swap = LatentSwap(SwapConfig(layer=20, step=0, mode="stream"))
    b_state, a_state = StateCapture("blocks.20"), StateCapture("blocks.20")
    (b,) = run_trajectory(tiny_model, task_b, tiny_settings, [SEED], interventions=[swap.capture, b_state])
    (a,) = run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[swap.replace, a_state])
    assert torch.equal(a_state.states[0][0], b_state.states[0][0])
    assert not torch.equal(a_state.states[0][1], b_state.states[0][1])
    assert set(swap.captured) == {(0, "cond"), (0, "uncond")}  # (step, CFG branch)
    assert np.abs(a.video - b.video).max() > 1e-3  # A's first frame still conditions A


def test_copy_operator_broadcasts_the_source():
    stacked = torch.arange(6.0).reshape(3, 2, 1)
    assert torch.equal(CopyOperator(1)(stacked), stacked[1:2].expand(3, 2, 1))


def test_probe_fields_are_validated(tiny_model, task, tiny_settings):
    with pytest.raises(UsageError, match=r"noise_at_step.strength: expected a number in \(0, 1\]"):
        NoiseAtStepConfig(step=1, strength=2.0)
    with pytest.raises(UsageError, match=r"noise_at_step.step: step 10 is out of range 0-9"):
        run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[noise_at_step(NoiseAtStepConfig(10))])
    with pytest.raises(UsageError, match=r"swap.layer: hook point 'blocks.40': layer 40 is out of range"):
        run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[LatentSwap(SwapConfig(40)).capture])


def test_the_ensemble_consensus_is_the_member_nearest_the_mean(tiny_model, task, tiny_settings):
    """On a real update-merged ensemble: the consensus rows name the member whose final x̂0 (the final latent) is
    nearest the members' mean, computed here independently in torch."""
    from cos_ray.interventions.configs import EnsembleConfig
    from cos_ray.probes.consensus import KIND_CONSENSUS, KIND_DISTANCE, consensus_rows

    members = run_trajectory(tiny_model, task, tiny_settings, [1, 2, 3], x0=X0Config(keep_latents=True),
                             ensemble=EnsembleConfig(size=3, merge="update", steps="0-1"))
    last = tiny_settings.steps - 1
    finals = torch.stack([member.x0_latents[last] for member in members]).double()  # (members, c, f, h, w)
    assert torch.equal(finals.float(), torch.stack([m.final_latent for m in members]).float())  # x̂0 = final latent
    mean = finals.mean(dim=0)
    distances = [float((final - mean).norm() / mean.norm()) for final in finals]
    rows = consensus_rows(["u-0", "u-1", "u-2"], "u", last, [m.final_latent.numpy() for m in members])
    by_kind = {kind: [row for row in rows if row["kind"] == kind] for kind in (KIND_DISTANCE, KIND_CONSENSUS)}
    assert [row["value"] for row in by_kind[KIND_DISTANCE]] == pytest.approx(distances, rel=1e-9)
    (chosen,) = by_kind[KIND_CONSENSUS]
    assert chosen["run_id"] == f"u-{int(np.argmin(distances))}" and chosen["step"] == last
    assert len(set(round(d, 9) for d in distances)) == 3  # the members differ (update merge keeps them apart)
