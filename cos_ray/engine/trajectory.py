"""Run one batch of seed trajectories through the diffusers pipeline with cos-ray's hooks installed.

The pipeline's own `__call__` does the sampling; cos-ray only adds hooks (a clock on each expert, a recorder on the
scheduler's step, and whatever interventions the run asks for) and removes them when the run ends, whatever happens.
With nothing asked for, a trajectory costs what a bare pipeline call costs.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

from cos_ray.engine.call import configure_pipeline, pipeline_arguments
from cos_ray.engine.clock import ClockHook, StepClock
from cos_ray.engine.hook_points import experts_of
from cos_ray.engine.hooks import HookSet, installed_hooks
from cos_ray.engine.latent_edits import LatentEdits
from cos_ray.engine.records import StepRecorder, X0Config
from cos_ray.engine.seeds import LocalSeeds, SeedGroup
from cos_ray.model.loader import LoadedModel
from cos_ray.sampler import SamplerSettings
from cos_ray.tasks.folder import TaskInput


@dataclass
class RunContext:
    """What an intervention needs to install itself for one run."""

    pipe: object
    experts: dict  # {'high': transformer, 'low': transformer_2}
    clock: StepClock
    seed_group: SeedGroup
    hooks: HookSet
    seeds: list[int]
    latent_edits: LatentEdits  # edits of x_s before the model sees step s


@dataclass
class MemberResult:
    """One member (seed) of a run."""

    seed: int
    member: int  # index among the group's members
    video: object  # `# (frames, height, width, 3)` float32 in [0, 1]
    steps: list[dict]  # one record per step: step, timestep, sigma, expert (+ x̂0 statistics when asked)
    final_latent: object  # `# (channels, frames, h, w)` after the last step
    # step -> x̂0 `# (channels, frames, h, w)` at every recorded step: whole with keep_latents, else its trace
    # (`cos_ray.engine.records.x0_trace`: pooled when large; the exploration measures read it)
    x0_latents: dict = field(default_factory=dict)
    filmstrip: object = None  # `# (decoded_steps, shown_frames, h, w, 3)` uint8, or None
    filmstrip_steps: list[int] = field(default_factory=list)
    probes: dict = field(default_factory=dict)  # probe name -> rows (see cos_ray.probes.program)
    stopped_at: int | None = None  # a search's pruned candidate: the last step it ran (video and final latent None)


def run_trajectory(
    model: LoadedModel,
    task: TaskInput,
    settings: SamplerSettings,
    seeds: list[int],
    *,
    ensemble=None,
    x0: X0Config | None = None,
    seed_group: SeedGroup | None = None,
    interventions=(),
    progress: bool = False,
    fork=None,
) -> list[MemberResult]:
    """Sample `seeds` as one batch; `ensemble` merges across `seed_group` (default: this batch).

    The engine knows interventions and probes only through this small interface (it imports neither): `ensemble` is
    any object with `apply(run: RunContext)` (`cos_ray.interventions.configs.EnsembleConfig`), `interventions` are
    callables `apply(run: RunContext)` installing further hooks (noise, swaps, probes). `fork`
    (`cos_ray.engine.snapshot.Fork`) resumes the run from a snapshot and/or takes snapshots on the way.
    """
    import torch

    pipe = model.pipe
    configure_pipeline(model, settings)
    pipe.set_progress_bar_config(disable=not progress)
    arguments = pipeline_arguments(model, task, settings, seeds)
    experts = experts_of(pipe)
    group = seed_group or LocalSeeds(len(seeds))
    pipe.scheduler.set_timesteps(settings.steps)  # the pipeline sets them again, identically; the clock needs sigmas
    clock = StepClock(total_steps=settings.steps, sigmas=pipe.scheduler.sigmas.clone())
    latent_channels = pipe.vae.config.z_dim
    with ExitStack() as stack, torch.inference_mode():
        hooks = stack.enter_context(installed_hooks(experts.values()))
        for expert, module in experts.items():
            clock_hook = ClockHook(clock, expert, latent_channels, pipe.config.expand_timesteps, module.config.patch_size)
            hooks.add(module, clock_hook, f"clock.{expert}")
        run = RunContext(pipe=pipe, experts=experts, clock=clock, seed_group=group, hooks=hooks, seeds=list(seeds),
                         latent_edits=LatentEdits(settings.steps))
        if ensemble is not None:
            ensemble.apply(run)
        for apply in interventions:
            apply(run)
        run.latent_edits.install(pipe, arguments)
        recorder = stack.enter_context(StepRecorder(pipe, clock, x0, members=len(seeds)))
        if fork is not None:  # cos_ray.engine.snapshot.Fork: resume from a snapshot, take snapshots
            fork.install(stack, run, arguments, recorder)
        videos = pipe(**arguments).frames  # (seeds, frames, height, width, 3)
    return [
        MemberResult(
            seed=seed,
            member=group.offset + index,
            video=videos[index],
            steps=recorder.records[index],
            final_latent=recorder.final_latents[index],
            x0_latents=recorder.x0_latents[index],
            filmstrip=_stack(recorder.filmstrips[index]),
            filmstrip_steps=list(recorder.filmstrip_steps),
        )
        for index, seed in enumerate(seeds)
    ]


def _stack(frames):
    import numpy as np

    return np.stack(frames) if frames else None
