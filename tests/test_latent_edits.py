"""Latent edits take effect exactly under Euler and UniPC: the edited x_s is what the model sees at step s and what
the scheduler continues from (UniPC: its corrected x_s, `last_sample`); other schedulers are refused with exit 2."""

from __future__ import annotations

import pytest
import torch

from cos_ray.engine.latent_edits import LatentEdits, scheduler_continues_from_edits
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.errors import UsageError
from cos_ray.interventions.configs import NoiseAtFrameConfig, NoiseAtStepConfig
from cos_ray.probes.states import StateCapture

SEED, NOISE_SEED, STEP = 21, 7, 4


class SchedulerTrace:
    """Test intervention: per step, the sample and velocity `scheduler.step` received, what it returned, and the
    sample it continues from (UniPC's `last_sample` after its corrector; Euler's input)."""

    def __init__(self):
        self.sample, self.velocity, self.prev, self.continued = {}, {}, {}, {}

    def __call__(self, run):
        scheduler, clock = run.pipe.scheduler, run.clock
        original = scheduler.step

        def step(model_output, timestep, sample, *args, **kwargs):  # (batch, channels, frames, h, w)
            result = original(model_output, timestep, sample, *args, **kwargs)
            s = clock.step
            self.sample[s], self.velocity[s] = sample.clone(), model_output.clone()
            self.prev[s] = (result[0] if isinstance(result, tuple) else result.prev_sample).clone()
            self.continued[s] = getattr(scheduler, "last_sample", None)
            self.continued[s] = sample.clone() if self.continued[s] is None else self.continued[s].clone()
            return result

        scheduler.step = step


def reference_noise(shape):
    """What `noise_at_step` promises: N(0, I) from a CPU generator seeded seed * 1000003 + run seed."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(NOISE_SEED * 1_000_003 + SEED))


def tokens(latent):  # (channels, frames, h, w) -> (tokens, channels), as StateCapture keeps latents
    return latent.float().flatten(1).T


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_noise_at_step_is_what_the_model_sees_and_the_scheduler_continues_from(tiny_model, task, tiny_settings,
                                                                                scheduler):
    settings = tiny_settings.replace(scheduler=scheduler)
    trace, seen = SchedulerTrace(), StateCapture("latents")
    config = NoiseAtStepConfig(step=STEP, seed=NOISE_SEED)
    run_trajectory(tiny_model, task, settings, [SEED], interventions=[config.apply, trace, seen])
    noise = reference_noise(trace.sample[STEP].shape[1:])  # (channels, frames, h, w)
    assert torch.equal(seen.states[0][STEP], tokens(noise))  # the model sees the noise, exactly
    assert torch.equal(trace.continued[STEP][0].float(), noise)  # ... and the scheduler continues from it
    assert torch.equal(seen.states[0][STEP + 1], tokens(trace.prev[STEP][0]))  # x_{s+1} is the scheduler's step
    if scheduler == "euler":  # x_{s+1} = x_s + (σ_{s+1} − σ_s)·v, with x_s the noise
        sigmas = settings_sigmas(tiny_model, settings)
        expected = noise + (sigmas[STEP + 1] - sigmas[STEP]) * trace.velocity[STEP][0].float()
        assert torch.allclose(trace.prev[STEP][0].float(), expected, atol=1e-6, rtol=0)


def settings_sigmas(tiny_model, settings):
    from cos_ray.engine.call import make_scheduler

    scheduler = make_scheduler(tiny_model, settings)
    scheduler.set_timesteps(settings.steps)
    return scheduler.sigmas.float()


def test_unipc_without_the_corrected_state_would_discard_the_edit(tiny_model, task, tiny_settings):
    """The defect this module fixes: an edit made in the step callback only is replaced by UniPC's corrector."""
    settings = tiny_settings.replace(scheduler="unipc")
    trace = SchedulerTrace()
    noise_holder = {}

    def callback_only(run):
        def edit(step, latents):  # (batch, channels, frames, h, w)
            if step != STEP:
                return latents
            noise_holder["noise"] = reference_noise(latents.shape[1:])[None].to(latents.dtype)
            return noise_holder["noise"]

        edits = run.latent_edits
        original = edits.install

        def install(pipe, arguments):  # the old path: the callback, not the scheduler's state
            scheduler, edits.install = pipe.scheduler, original
            corrector = scheduler.multistep_uni_c_bh_update
            original(pipe, arguments)
            scheduler.multistep_uni_c_bh_update = corrector

        edits.add(edit)
        edits.install = install

    run_trajectory(tiny_model, task, settings, [SEED], interventions=[callback_only, trace])
    assert torch.equal(trace.sample[STEP], noise_holder["noise"])  # the model saw the noise
    assert float((trace.continued[STEP] - noise_holder["noise"]).abs().max()) > 0.1  # the corrector replaced it


def test_noise_at_frame_under_unipc_keeps_the_frame_in_the_corrected_state(tiny_model, task, tiny_settings):
    settings = tiny_settings.replace(scheduler="unipc")
    trace = SchedulerTrace()
    config = NoiseAtFrameConfig(frame=1, seed=NOISE_SEED)
    run_trajectory(tiny_model, task, settings, [SEED], interventions=[config.apply, trace])
    for step in range(settings.steps):
        seen, continued = trace.sample[step][:, :, 1], trace.continued[step][:, :, 1]  # (batch, channels, h, w)
        assert torch.equal(seen, continued), step  # frame 1 is the fresh noise in both
        assert abs(float(seen.std()) - 1.0) < 0.15
    assert not torch.equal(trace.sample[3][:, :, 0], trace.continued[3][:, :, 0])  # other frames: UniPC as usual


def test_a_scheduler_that_cannot_take_edits_is_refused():
    from diffusers import DPMSolverMultistepScheduler

    with pytest.raises(UsageError, match="take effect exactly only under euler, flowmatch-euler or unipc") as caught:
        scheduler_continues_from_edits(DPMSolverMultistepScheduler(), LatentEdits(10))
    assert caught.value.exit_code == 2 and "DPMSolverMultistepScheduler" in str(caught.value)
