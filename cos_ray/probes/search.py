"""Chain-of-Steps-guided search: run N candidate seeds to an early step, judge their x̂0, continue only the best M.

The paper finds the answer visible in x̂0 long before the last step; best-of-N pays every candidate's whole
trajectory to find out which seed was right. A search pays N trajectories only up to `select_at` and M after it:

1. each candidate runs alone (one seed per call, as a baseline unit does, so its rows stay bit-identical to the
   baseline run of that seed) through step `select_at`, which computes its x̂0 there; a snapshot is taken before step
   `select_at + 1` (`cos_ray.engine.snapshot`) and the call stops - no further forward pass;
2. the verifier (`cos_ray.probes.verifiers`) scores every candidate's x̂0 at `select_at`; with the seeds spread over a
   worker group the scores are gathered over the group's seed axis, so every worker picks the same M;
3. the M best (ties: the lowest member) resume from their snapshots to the end - no step is computed twice; the
   others are returned as pruned members: their records up to `select_at`, no video, `stopped_at = select_at`.

Every member carries the verifier's judgement in `probes['search']` (one row: step, score, rank, kept), which the
store keeps as a `layers` row of kind `search`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from cos_ray.errors import UsageError

VERIFIERS = ("task", "consensus", "evalkit")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
KIND_SEARCH = "search"  # the `layers` row of the verifier's judgement of a candidate


@dataclass(frozen=True)
class SearchConfig:
    """`candidates` seeds S..S+N-1 run to step `select_at` (an index, or a percentage of the steps: `30%`); the `keep`
    best by `verifier` continue to the end. `rounds` (selecting again at later steps) is refused for now."""

    candidates: int = 4
    select_at: int | str = "30%"
    keep: int = 1
    verifier: str = "consensus"
    rounds: tuple = ()
    field: str = "search"

    def __post_init__(self):
        where = self.field
        if not isinstance(self.candidates, int) or isinstance(self.candidates, bool) or self.candidates < 2:
            raise UsageError(f"{where}.candidates: expected an integer >= 2 (seeds to choose among), "
                             f"got {self.candidates!r}")
        if not isinstance(self.keep, int) or isinstance(self.keep, bool) or self.keep < 1:
            raise UsageError(f"{where}.keep: expected an integer >= 1, got {self.keep!r}")
        if self.keep > self.candidates:
            raise UsageError(f"{where}.keep: {self.keep} exceeds candidates {self.candidates} (keep is how many of "
                             "the candidates continue past select_at)")
        if self.verifier not in VERIFIERS:
            raise UsageError(f"{where}.verifier: expected one of {', '.join(VERIFIERS)}, got {self.verifier!r}")
        if self.rounds:
            raise UsageError(f"{where}.rounds: selecting again at later steps is not implemented yet; give one "
                             "select_at and keep (and leave rounds out)")
        if isinstance(self.select_at, bool) or not isinstance(self.select_at, (int, str)):
            raise UsageError(f"{where}.select_at: expected a step index or a percentage of the steps like '30%', "
                             f"got {self.select_at!r}")

    def resolved(self, steps: int) -> "SearchConfig":
        """This search with `select_at` as a step index of a `steps`-step run; UsageError naming the field when it
        selects no step, several, or one that leaves nothing to continue (the last step: that is best-of-N)."""
        from cos_ray.engine.steps import parse_index_range

        where = f"{self.field}.select_at"
        percent = _PERCENT.match(self.select_at) if isinstance(self.select_at, str) else None
        if percent:  # after that share of the steps: 30% of 10 steps is step 3
            indices = (int(float(percent.group(1)) * steps / 100),)
            if indices[0] >= steps:
                raise UsageError(f"{where}: {self.select_at!r} is past the run's {steps} steps")
        else:
            indices = parse_index_range(self.select_at, steps, where)
        if len(indices) != 1:
            raise UsageError(f"{where}: expected one step, got {self.select_at!r} = steps {list(indices)}")
        step = indices[0]
        if step > steps - 2:
            raise UsageError(f"{where}: step {step} leaves no step to continue (the run has {steps} steps, 0-"
                             f"{steps - 1}); select at step {steps - 2} or earlier (selecting after the last step "
                             "is best-of-N)")
        return dataclasses.replace(self, select_at=step)

    def params(self) -> dict:
        """The canonical dict (unit id, `params` column)."""
        return {"candidates": self.candidates, "select_at": self.select_at, "keep": self.keep,
                "verifier": self.verifier}

    def member_seeds(self, seed: int) -> list[int]:
        return list(range(seed, seed + self.candidates))

    def passes(self, per_step: list[int]) -> tuple[int, int]:
        """(this search's forward passes, best-of-N's at the same N), `per_step` the passes of each step of one
        trajectory (`cos_ray.spec.forks.passes_per_step`); `select_at` resolved."""
        upto = sum(per_step[: self.select_at + 1])
        return self.candidates * upto + self.keep * (sum(per_step) - upto), self.candidates * sum(per_step)


class _Stopped(Exception):
    """Raised from the step callback once the snapshot the search needs is taken: the pipeline call ends there."""


def _stopping_fork(stop: int):
    """A `Fork` that takes a snapshot before step `stop` and then ends the pipeline call (`_Stopped`)."""
    from cos_ray.engine.snapshot import Fork

    class StoppingFork(Fork):
        def install(self, stack, run, arguments, recorder):
            super().install(stack, run, arguments, recorder)
            inner = arguments["callback_on_step_end"]

            def callback(pipe, index, timestep, tensors):
                result = inner(pipe, index, timestep, tensors)
                if index + self.start + 1 == stop:
                    raise _Stopped
                return result

            arguments["callback_on_step_end"] = callback

    return StoppingFork(take=frozenset({stop}))


class X0AtStep:
    """Intervention keeping x̂0 = x_s − σ_s·v of step `step` `# (batch, channels, frames, h, w)` (as the step
    recorder computes it), without touching the trajectory."""

    def __init__(self, step: int):
        self.step, self.x0 = step, None

    def __call__(self, run) -> None:
        scheduler, clock = run.pipe.scheduler, run.clock
        original = scheduler.step

        def step(model_output, timestep, sample, *args, **kwargs):
            if clock.step == self.step:
                x0 = sample.float() - clock.sigma * model_output.float()
                if clock.first_frame_latent is not None:
                    x0[:, :, 0] = clock.first_frame_latent.float()
                self.x0 = x0.detach().clone()
            return original(model_output, timestep, sample, *args, **kwargs)

        scheduler.step = step  # the recorder wraps this (it is entered after the interventions); a fresh scheduler
        # is made for every call (`configure_pipeline`), so nothing outlives the run


def run_search(model, task, settings, seeds: list[int], config: SearchConfig, *, x0=None, seed_group=None,
               interventions=(), ensemble=None, fork=None, progress: bool = False) -> list:
    """The members (`MemberResult`, member order) of a search over `seeds` (this process's share of the unit's
    candidates; `seed_group` holds them all): kept ones whole, pruned ones up to `select_at` with `stopped_at` set."""
    from cos_ray.engine.seeds import LocalSeeds
    from cos_ray.engine.snapshot import Fork
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.probes.verifiers import make_verifier, ranking

    if ensemble is not None:
        raise UsageError(f"{config.field}: a search does not merge its candidates (no ensemble) yet")
    if fork is not None and (fork.take or fork.resume is not None):
        raise UsageError(f"{config.field}: a search unit is not forked (it runs its candidates' snapshots itself)")
    if not isinstance(config.select_at, int):
        config = config.resolved(settings.steps)
    select, group = config.select_at, seed_group or LocalSeeds(len(seeds))
    verifier = make_verifier(config, task)
    extra = list(interventions)
    snapshots, judged = [], []
    for seed in seeds:
        capture, stop = X0AtStep(select), _stopping_fork(select + 1)
        try:
            run_trajectory(model, task, settings, [seed], x0=x0, interventions=[*extra, capture], fork=stop,
                           progress=progress)
        except _Stopped:
            pass
        else:  # the callback always stops the call at select + 1 <= steps - 1
            raise RuntimeError(f"search: the candidate of seed {seed} ran past step {select}")
        snapshots.append(stop.taken[select + 1])
        judged.append(capture.x0[0])  # (channels, frames, h, w)
    scores = verifier.scores(model, judged, group)  # every candidate of the unit, member order
    order = ranking(scores)
    kept = set(order[: config.keep])
    members = []
    for index, (seed, snapshot) in enumerate(zip(seeds, snapshots)):
        number = group.offset + index
        row = {"step": select, "score": scores[number], "rank": order.index(number), "kept": number in kept,
               "verifier": config.verifier}
        if number in kept:
            member = run_trajectory(model, task, settings, [seed], x0=x0, interventions=list(extra),
                                    fork=Fork(resume=snapshot), progress=progress)[0]
        else:
            member = _pruned(seed, snapshot, select)
        members.append(dataclasses.replace(member, member=number, probes={**member.probes, KIND_SEARCH: [row]}))
    return members


def _pruned(seed: int, snapshot, select: int):
    """A candidate stopped after step `select`: its records, x̂0 and filmstrip so far; no video, no final latent."""
    import numpy as np

    from cos_ray.engine.trajectory import MemberResult

    strip = snapshot.filmstrips[0]
    return MemberResult(seed=seed, member=0, video=None, steps=snapshot.records[0], final_latent=None,
                        x0_latents=snapshot.x0_latents[0], filmstrip=np.stack(strip) if strip else None,
                        filmstrip_steps=list(snapshot.filmstrip_steps), stopped_at=select)
