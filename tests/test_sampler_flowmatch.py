"""`flowmatch-euler` against DiffSynth's Wan schedule, written out here from its formula
(OpenSenseNova/Demystifying_Video_Reasoning, diffsynth/diffusion/flow_match.py: set_timesteps_wan, step), and the
authors' protocol: expert switch when t < 0.875 x 1000, initial noise as DiffSynth's generate_noise draws it, the
ground truth's frame count and the first frame's own size (diffsynth/diffusion/base_pipeline.py:
check_resize_height_width)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cos_ray.engine.schedulers import WanFlowMatchEuler, make_scheduler_from_config
from cos_ray.sampler import default_settings, first_frame_size, round_frames


def diffsynth_schedule(steps: int, shift: float):
    """DiffSynth's set_timesteps_wan (denoising_strength 1): sigmas and timesteps, float32."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return sigmas, sigmas * 1000


def diffsynth_round(height: int, width: int, frames: int, factor: int = 16):
    """DiffSynth's check_resize_height_width for Wan (division factors 16, 16, time 4 remainder 1)."""
    if height % factor:
        height = (height + factor - 1) // factor * factor
    if width % factor:
        width = (width + factor - 1) // factor * factor
    if frames % 4 != 1:
        frames = (frames + 4 - 1) // 4 * 4 + 1
    return height, width, frames


@pytest.mark.parametrize("steps, shift", [(50, 5.0), (10, 5.0), (7, 3.0), (1, 5.0)])
def test_schedule_equals_diffsynth_formula(tiny_model, steps, shift):
    scheduler = make_scheduler_from_config(tiny_model.scheduler_config, "flowmatch-euler", shift)
    assert isinstance(scheduler, WanFlowMatchEuler)
    scheduler.set_timesteps(steps)  # as the Wan pipeline calls it: no sigmas
    sigmas, timesteps = diffsynth_schedule(steps, shift)
    assert torch.equal(scheduler.sigmas[:-1], sigmas)  # bit for bit, not just close
    assert torch.equal(scheduler.timesteps, timesteps)
    assert scheduler.sigmas[-1].item() == 0.0 and len(scheduler.sigmas) == steps + 1


def test_unipc_stays_available(tiny_model):
    from diffusers import UniPCMultistepScheduler

    assert isinstance(make_scheduler_from_config(tiny_model.scheduler_config, "unipc", 5.0), UniPCMultistepScheduler)


def test_euler_steps_are_diffsynth_steps(tiny_model, task, tiny_settings):
    """Every step of a real run is x + v (sigma_next - sigma) on DiffSynth's sigmas, the last one to sigma = 0."""
    from cos_ray.engine.call import configure_pipeline, pipeline_arguments

    settings = tiny_settings.replace(scheduler="flowmatch-euler", steps=4, frames=5, height=32, width=32)
    configure_pipeline(tiny_model, settings)
    pipe = tiny_model.pipe
    original, seen = pipe.scheduler.step, []

    def step(model_output, timestep, sample, *args, **kwargs):
        out = original(model_output, timestep, sample, *args, **kwargs)
        seen.append((float(timestep), model_output.clone(), sample.clone(), out[0].clone()))
        return out

    pipe.scheduler.step = step
    try:
        with torch.inference_mode():
            pipe(**pipeline_arguments(tiny_model, task, settings, [3]))
    finally:
        pipe.scheduler.__dict__.pop("step", None)
    sigmas, timesteps = diffsynth_schedule(4, 5.0)
    targets = [*sigmas.tolist()[1:], 0.0]
    assert [t for t, *_ in seen] == pytest.approx(timesteps.tolist())
    for (_, velocity, sample, out), sigma, target in zip(seen, sigmas.tolist(), targets):
        expected = sample.float() + velocity.float() * (target - sigma)  # (1, 16, frames, h, w)
        torch.testing.assert_close(out.float(), expected, rtol=0, atol=1e-6)


def test_expert_switch_at_0875(tiny_model, task, tiny_settings):
    """DiffSynth switches to the low-noise expert when timestep < 0.875 * 1000."""
    from cos_ray.engine.trajectory import run_trajectory

    settings = tiny_settings.replace(scheduler="flowmatch-euler", steps=6, frames=5, height=32, width=32)
    (member,) = run_trajectory(tiny_model, task, settings, [0])
    _, timesteps = diffsynth_schedule(6, 5.0)
    expected = ["low" if t < 0.875 * 1000 else "high" for t in timesteps.tolist()]
    assert [record["expert"] for record in member.steps] == expected
    assert "high" in expected and "low" in expected


def test_initial_noise_as_diffsynth_draws_it(tiny_model, task, tiny_settings):
    """DiffSynth: torch.randn((1, z_dim, (F - 1) // 4 + 1, H // 8, W // 8), generator=Generator('cpu').manual_seed(s),
    dtype=float32) per sample; cos-ray's batch of seeds draws each member's noise the same way."""
    from cos_ray.engine.call import configure_pipeline, pipeline_arguments

    settings = tiny_settings.replace(scheduler="flowmatch-euler", steps=1, frames=9, height=32, width=48)
    configure_pipeline(tiny_model, settings)
    pipe, captured = tiny_model.pipe, {}
    original = pipe.prepare_latents

    def prepare(*args, **kwargs):
        out = original(*args, **kwargs)
        captured["latents"] = out[0].clone()
        return out

    pipe.prepare_latents = prepare
    try:
        with torch.inference_mode():
            pipe(**pipeline_arguments(tiny_model, task, settings, [1, 7]))
    finally:
        del pipe.prepare_latents
    z = pipe.vae.config.z_dim
    for index, seed in enumerate([1, 7]):
        reference = torch.randn((1, z, (9 - 1) // 4 + 1, 32 // 8, 48 // 8),
                                generator=torch.Generator("cpu").manual_seed(seed), device="cpu", dtype=torch.float32)
        assert captured["latents"].dtype == torch.float32
        assert torch.equal(captured["latents"][index : index + 1], reference)


@pytest.mark.parametrize("count", [1, 5, 17, 20, 80, 81, 82, 84, 97, 120])
def test_frame_rounding_as_diffsynth(count):
    assert round_frames(count) == diffsynth_round(16, 16, count)[2]


@pytest.mark.parametrize("size", [(832, 480), (1024, 1024), (100, 61), (17, 33), (1280, 720)])
def test_size_as_diffsynth(size):
    width, height = size
    rounded_h, rounded_w, _ = diffsynth_round(height, width, 81)
    assert first_frame_size(width, height, 16) == (rounded_h, rounded_w)
    capped = first_frame_size(width, height, 16, max_area=256 * 256)
    assert capped[0] * capped[1] <= max(256 * 256, rounded_h * rounded_w) and capped[0] % 16 == capped[1] % 16 == 0


def _write_sample(folder, frames: int, size: tuple[int, int]):
    import imageio.v3 as iio
    from PIL import Image

    width, height = size
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (frames, 64, 64, 3), dtype=np.uint8)
    iio.imwrite(folder / "ground_truth.mp4", video, fps=16, codec="libx264")
    Image.new("RGB", (width, height), "white").save(folder / "first_frame.png")
    Image.new("RGB", (width, height), "white").save(folder / "final_frame.png")
    (folder / "prompt.txt").write_text("draw the path\n")


def test_ground_truth_frames_and_first_frame_size_are_used(tmp_path, tiny_model):
    """Sized from the sample: frames = ffmpeg's packet count of ground_truth.mp4 (rounded as DiffSynth rounds it),
    height x width = the first frame's own, rounded up to 16 - what the pipeline is called with."""
    import imageio_ffmpeg

    from cos_ray.engine.call import pipeline_arguments
    from cos_ray.tasks.folder import read_task_folder
    from cos_ray.tasks.protocol import ground_truth_frames, settings_for_task

    _write_sample(tmp_path / "a", 19, (72, 40))
    task = read_task_folder(tmp_path / "a")
    packets = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "a" / "ground_truth.mp4"))[0]
    assert packets == 19 and ground_truth_frames(task.ground_truth_path) == 19
    protocol = dataclasses.replace(default_settings("tiny-a14b"), frames=None, height=None, width=None, max_area=None)
    arguments = pipeline_arguments(tiny_model, task, protocol, [1])
    assert arguments["num_frames"] == diffsynth_round(40, 72, 19)[2] == 21
    assert (arguments["height"], arguments["width"]) == diffsynth_round(40, 72, 19)[:2] == (48, 80)
    assert settings_for_task(protocol, task).frames == 21
    (tmp_path / "a" / "ground_truth.mp4").unlink()
    assert settings_for_task(protocol, read_task_folder(tmp_path / "a")).frames == 81  # no ground truth: 81
