"""Chain-of-Steps-guided search: run N candidate seeds to an early step, judge their x̂0, continue only the best M.

The paper finds the answer visible in x̂0 long before the last step; best-of-N pays every candidate's whole
trajectory to find out which seed was right. A search pays N trajectories only up to `select_at` and M after it:

1. each candidate runs alone (one seed per call, as a baseline unit does, so its rows stay bit-identical to the
   baseline run of that seed) through step `select_at`, which computes its x̂0 there; a snapshot is taken before step
   `select_at + 1` (`cos_ray.engine.snapshot`) and the call stops - no further forward pass;
2. the verifier (`cos_ray.probes.verifiers`) scores every candidate's x̂0 at `select_at`; with the seeds spread over a
   worker group the scores are gathered over the group's seed axis, so every worker picks the same M;
3. the M best (ties: an order of the candidates fixed by the task, `verifiers.tiebreak_order`) resume from their
   snapshots - to the next selection of `rounds`, where the candidates still running are judged again, or to the
   end - no step is computed twice; the others are returned as pruned members: their records up to their selection
   step, no video, `stopped_at` = that step;
4. with several kept to the end, the verifier judges their final x̂0 once more and the best is the search's answer
   (ties: the better rank at the selection before) - no forward pass, a decode at most.

With `ensemble` (the paper's merge, `EnsembleConfig`, its size the candidates; every merged step at or before the
first `select_at`: merge early, then select), step 1 is ONE batched call over this process's candidates, merged as an
ensemble unit merges them (over a worker group: through the seed group's collective), that captures every member's
x̂0 at `select_at` and one batch snapshot before the next step; each kept candidate then resumes alone from its own
member of that snapshot (`Snapshot.member`). Its rows through `select_at` are those of the plain ensemble run of the
same seeds; after the merge it is one seed per call, as without the ensemble.

Every member carries the verifier's judgements in `probes['search']` (a row per selection it took part in: step,
score, rank, kept), which the store keeps as `layers` rows of kind `search`.
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
    best by `verifier` go on. `rounds`: later selections, each `{select_at, keep}` (a beam over steps): the
    candidates still running are judged again at that step and only its `keep` best go on."""

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
        rounds = []
        for index, stage in enumerate(self.rounds):
            at = f"{where}.rounds[{index}]"
            if not isinstance(stage, dict) or set(stage) - {"select_at", "keep"} or "select_at" not in stage:
                raise UsageError(f"{at}: expected a mapping {{select_at: STEP, keep: M}}, got {stage!r}")
            keep = stage.get("keep", 1)
            if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
                raise UsageError(f"{at}.keep: expected an integer >= 1, got {keep!r}")
            before = rounds[-1]["keep"] if rounds else self.keep
            if keep > before:
                raise UsageError(f"{at}.keep: {keep} exceeds the {before} still running after the selection before")
            rounds.append({"select_at": stage["select_at"], "keep": keep})
        object.__setattr__(self, "rounds", tuple(rounds))
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
        rounds, previous = [], step
        for index, stage in enumerate(self.rounds):
            later = dataclasses.replace(self, select_at=stage["select_at"], rounds=(),
                                        field=f"{self.field}.rounds[{index}]").resolved(steps).select_at
            if later <= previous:
                raise UsageError(f"{self.field}.rounds[{index}].select_at: step {later} is not after the selection "
                                 f"before it (step {previous})")
            rounds.append({"select_at": later, "keep": stage["keep"]})
            previous = later
        return dataclasses.replace(self, select_at=step, rounds=tuple(rounds))

    def stages(self) -> list[tuple[int, int]]:
        """(select_at, keep) of every selection, in step order (`select_at` resolved)."""
        return [(self.select_at, self.keep), *((stage["select_at"], stage["keep"]) for stage in self.rounds)]

    def params(self) -> dict:
        """The canonical dict (unit id, `params` column); `rounds` only when given (older ids unchanged)."""
        params = {"candidates": self.candidates, "select_at": self.select_at, "keep": self.keep,
                  "verifier": self.verifier}
        if self.rounds:
            params["rounds"] = [dict(stage) for stage in self.rounds]
        return params

    def member_seeds(self, seed: int) -> list[int]:
        return list(range(seed, seed + self.candidates))

    def passes(self, per_step: list[int]) -> tuple[int, int]:
        """(this search's forward passes, best-of-N's at the same N), `per_step` the passes of each step of one
        trajectory (`cos_ray.spec.forks.passes_per_step`); `select_at` resolved."""
        total, running, start = 0, self.candidates, 0
        for select, keep in self.stages():
            total += running * sum(per_step[start: select + 1])
            running, start = keep, select + 1
        return total + running * sum(per_step[start:]), self.candidates * sum(per_step)


def check_merge_size(config: SearchConfig, size: int | None) -> None:
    """UsageError naming `{search}.ensemble.size` unless the merge is over exactly the search's candidates (None: the
    spec left it out, and it is the candidates)."""
    if size is not None and size != config.candidates:
        raise UsageError(f"{config.field}.ensemble.size: {size} differs from candidates {config.candidates} (the "
                         "ensemble merges the search's candidates: leave size out)")


def check_merge_before_selection(config: SearchConfig, ensemble, steps: int) -> None:
    """UsageError naming `{search}.ensemble.size` / `.steps` unless the ensemble merges exactly the search's candidates
    and only at or before its first selection (merge early, then select): a kept candidate resumes alone, so a merged
    step after `select_at` would have no other seeds to merge with."""
    from cos_ray.engine.steps import parse_index_range

    check_merge_size(config, ensemble.size)
    where = f"{config.field}.ensemble"
    select = config.resolved(steps).select_at
    late = [step for step in parse_index_range(ensemble.steps, steps, f"{where}.steps") if step > select]
    if late:
        raise UsageError(f"{where}.steps: merges at step(s) {late} after select_at (step {select}); a search merges "
                         f"early, then selects: expected steps <= {select} (e.g. 0-{select})")


class _Stopped(Exception):
    """Raised from the step callback once the snapshot the search needs is taken: the pipeline call ends there."""


def _stopping_fork(stop: int, resume=None):
    """A `Fork` (from `resume`, or noise) that takes a snapshot before step `stop` and then ends the pipeline call
    (`_Stopped`)."""
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

    return StoppingFork(take=frozenset({stop}), resume=resume)


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
    candidates; `seed_group` holds them all): kept ones whole, pruned ones up to their selection step with
    `stopped_at` set. Each selection judges the candidates still running; every process computes the same ranking
    from the gathered scores, so each knows which of its own go on."""
    from cos_ray.engine.seeds import LocalSeeds
    from cos_ray.engine.snapshot import Fork
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.probes.verifiers import make_verifier, ranking, tiebreak_order

    if fork is not None and (fork.take or fork.resume is not None):
        raise UsageError(f"{config.field}: a search unit is not forked (it runs its candidates' snapshots itself)")
    config = config.resolved(settings.steps) if not isinstance(config.select_at, int) or any(
        not isinstance(stage["select_at"], int) for stage in config.rounds) else config
    if ensemble is not None:
        check_merge_before_selection(config, ensemble, settings.steps)
    group = seed_group or LocalSeeds(len(seeds))
    verifier = make_verifier(config, task)
    tiebreak = tiebreak_order(task.task_id, group.total)
    extra = list(interventions)
    snapshots = [None] * len(seeds)  # the snapshot each candidate stopped at (None: from noise)
    judged = [[] for _ in seeds]  # per local candidate: its verifier rows, one per selection it took part in
    alive = set(range(group.total))  # members still running, the same set on every process
    stopped = {}  # local index -> the step it was pruned after
    for stage, (select, keep) in enumerate(config.stages()):
        latents = {}
        if stage == 0 and ensemble is not None:  # every candidate, merged, in one call: as an ensemble unit runs
            batch, x0s = _run_to(select, model, task, settings, seeds, x0, extra, progress, ensemble=ensemble,
                                 seed_group=group)
            for index in range(len(seeds)):
                snapshots[index], latents[index] = batch.member(index), x0s[index]
        for index, seed in enumerate(seeds):
            if group.offset + index not in alive or index in latents:
                continue
            snapshots[index], x0s = _run_to(select, model, task, settings, [seed], x0, extra, progress,
                                            resume=snapshots[index])
            latents[index] = x0s[0]  # (channels, frames, h, w)
        scores = verifier.scores(model, [latents.get(index) for index in range(len(seeds))], group, alive)
        order = [number for number in ranking(scores, tiebreak) if number in alive]
        going_on = set(order[:keep])
        for index in latents:
            number = group.offset + index
            judged[index].append({"step": select, "score": scores[number], "rank": order.index(number),
                                  "kept": number in going_on, "verifier": config.verifier})
            if number not in going_on:
                stopped[index] = select
        alive = going_on
    finished = {}
    for index, (seed, snapshot) in enumerate(zip(seeds, snapshots)):
        if index in stopped:
            finished[index] = _pruned(seed, snapshot, stopped[index])
        else:
            finished[index] = run_trajectory(model, task, settings, [seed], x0=x0, interventions=list(extra),
                                             fork=Fork(resume=snapshot), progress=progress)[0]
    if len(alive) > 1:
        _judge_the_kept(model, verifier, config, settings.steps - 1, finished, group, alive, order, judged)
    return [dataclasses.replace(member, member=group.offset + index,
                                probes={**member.probes, KIND_SEARCH: judged[index]})
            for index, member in sorted(finished.items())]


def _judge_the_kept(model, verifier, config, last: int, finished: dict, group, alive: set, before: list,
                    judged: list) -> None:
    """With several candidates kept to the end, the verifier judges their final x̂0 (the final latent) once more and
    the best is the search's answer: a row at step `last` per kept candidate, `kept` true for the answer only. Ties
    (scores equal to 9 digits) go to the better rank at the selection before (`before`, best first): two kept
    candidates are equidistant from their mean, so `consensus` keeps its earlier choice there instead of the lower
    seed."""
    import torch

    from cos_ray.probes.verifiers import ranking

    latents = [torch.as_tensor(finished[index].final_latent) if group.offset + index in alive else None
               for index in range(len(finished))]  # (channels, frames, h, w)
    scores = verifier.scores(model, latents, group, alive)
    places = [before.index(number) if number in before else len(before) for number in range(len(scores))]
    order = [number for number in ranking([round(score, 9) for score in scores], places) if number in alive]
    for index, latent in enumerate(latents):
        if latent is not None:
            number = group.offset + index
            judged[index].append({"step": last, "score": scores[number], "rank": order.index(number),
                                  "kept": number == order[0], "verifier": config.verifier})


def _run_to(select: int, model, task, settings, seeds: list[int], x0, extra, progress, resume=None, **merge):
    """Run `seeds` as one call (from `resume`, or noise; `merge`: the ensemble and its seed group) through step
    `select` and stop there: (the snapshot taken before step `select + 1`, x̂0 at `select`
    `# (batch, channels, frames, h, w)`)."""
    from cos_ray.engine.trajectory import run_trajectory

    capture, stop = X0AtStep(select), _stopping_fork(select + 1, resume)
    try:
        run_trajectory(model, task, settings, list(seeds), x0=x0, interventions=[*extra, capture], fork=stop,
                       progress=progress, **merge)
    except _Stopped:
        pass
    else:  # the callback always stops the call at select + 1 <= steps - 1
        raise RuntimeError(f"search: the candidate(s) of seeds {list(seeds)} ran past step {select}")
    return stop.taken[select + 1], capture.x0


def _pruned(seed: int, snapshot, select: int):
    """A candidate stopped after step `select`: its records, x̂0 and filmstrip so far; no video, no final latent."""
    import numpy as np

    from cos_ray.engine.trajectory import MemberResult

    strip = snapshot.filmstrips[0]
    return MemberResult(seed=seed, member=0, video=None, steps=snapshot.records[0], final_latent=None,
                        x0_latents=snapshot.x0_latents[0], filmstrip=np.stack(strip) if strip else None,
                        filmstrip_steps=list(snapshot.filmstrip_steps), stopped_at=select)
