"""`methods: - search: {candidates: N, select_at: STEP|PCT, keep: M, verifier: task|consensus|evalkit}`: Chain-of-Steps
guided search (`cos_ray.probes.search`). One unit per start seed: candidates S..S+N-1 run to `select_at`, the
verifier judges their x̂0 there, the `keep` best continue to the end, the others are recorded as pruned.

Refused before any model time, each naming its field: keep > candidates, a select_at past the second-to-last step,
an unknown verifier, `evalkit` where VBVR-EvalKit is not importable, `task` on tasks without a built-in scorer,
and `rounds` (later selections: `[{select_at: STEP, keep: M}, ...]`, a beam over steps) whose steps do not increase
or whose keep grows.

`ensemble: {layers: 20-29, steps: 0-1, merge: update}` merges the candidates as the paper's ensemble does (merge
early, then select): its fields are the ensemble method's (`EnsembleConfig` validates them), its size is the
candidates (a `size` that differs is refused), and every merged step must come at or before `select_at`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from cos_ray.interventions.configs import EnsembleConfig
from cos_ray.spec.fields import SpecNode
from cos_ray.spec.methods import EnsembleSpec, MethodSpec, StartSeeds, config_problems


@dataclass(frozen=True)
class SearchEnsembleSpec(SpecNode):
    """`search.ensemble`: the paper's ensemble over the search's candidates before it selects. The ensemble method's
    fields (`EnsembleSpec`, `EnsembleConfig`: defaults and validation there) without `starts` (the search's own
    apply); `size` is the candidates - given, it must equal them."""

    size: int | None = None
    layers: str | int | list[int] = EnsembleConfig.layers
    steps: str | int | list[int] = EnsembleConfig.steps
    merge: Literal["stream", "update"] = EnsembleConfig.merge

    def check(self):
        yield from config_problems(lambda: self.config(2 if self.size is None else self.size, ""))

    def method(self, candidates: int) -> EnsembleSpec:
        """The ensemble method this stands for over `candidates` seeds (its range checks and resolution)."""
        return EnsembleSpec(size=candidates, layers=self.layers, steps=self.steps, merge=self.merge)

    def config(self, size: int, path: str) -> EnsembleConfig:
        return EnsembleConfig(size=size, layers=self.layers, steps=self.steps, merge=self.merge, field=path)


@dataclass(frozen=True)
class SearchSpec(StartSeeds, MethodSpec, SpecNode):
    """N candidate seeds to an early step, the best M continued (`SearchConfig`: defaults and validation there).

    `verifier`: `task` (the family's scorer on x̂0 - privileged: it reads the answer), `consensus` (the candidates'
    medoid: no task knowledge), `evalkit` (VBVR-EvalKit's scorer, where installed). `starts`: the seeds a search
    starts at (as the ensemble's), e.g. [0] with seeds 0-7 and 8 candidates: one search over the baselines' seeds.
    `ensemble` (`SearchEnsembleSpec`): merge the candidates as the paper's ensemble before the first selection.
    """

    name = "search"
    candidates: int = 4
    select_at: int | str = "30%"
    keep: int = 1
    verifier: Literal["task", "consensus", "evalkit"] = "consensus"
    rounds: list[dict[str, Any]] | None = None  # later selections: [{select_at: STEP, keep: M}, ...]
    starts: str | list[int] | None = None
    ensemble: SearchEnsembleSpec | None = None  # merge the candidates before the first selection

    def check(self):
        problem = self.starts_problem()
        if problem:
            yield problem
            return
        problems = config_problems(lambda: self.search(""))
        yield from ((name.lstrip("."), message) for name, message in problems)
        if not problems and self.verifier == "evalkit":
            import importlib.util

            if importlib.util.find_spec("vbvr_bench") is None:
                yield "verifier", ("evalkit needs VBVR-EvalKit (Python package `vbvr_bench`), not importable here; "
                                   "install it from github.com/Video-Reason/VBVR-EvalKit, or use verifier: task "
                                   "or consensus")
        if not problems and self.ensemble is not None:
            from cos_ray.probes.search import check_merge_size

            size = config_problems(lambda: check_merge_size(self.search(""), self.ensemble.size))
            yield from ((name.lstrip("."), message) for name, message in size)

    def search(self, path: str):
        from cos_ray.probes.search import SearchConfig

        return SearchConfig(candidates=self.candidates, select_at=self.select_at, keep=self.keep,
                            verifier=self.verifier, rounds=tuple(self.rounds or ()), field=path)

    def member_seeds(self, seed: int) -> list[int]:
        return self.search("").member_seeds(seed)

    def params(self) -> dict:
        """The search's canonical dict; `ensemble` (its `EnsembleConfig.params()`) only when given, so the ids of
        searches without one stay as they were."""
        params = self.search("").params()
        if self.ensemble is not None:
            params["ensemble"] = self.config("").params()
        return params

    def config(self, path: str):
        """The candidates' merge (`EnsembleConfig`, size = candidates), or None: the unit's `ensemble`."""
        return None if self.ensemble is None else self.ensemble.config(self.candidates, f"{path}.ensemble")

    def check_against(self, num_layers: int, steps: int | None, path: str):
        problems = [] if steps is None else config_problems(lambda: self.search(path).resolved(steps))
        if self.ensemble is None or problems:
            return problems
        problems = list(self.ensemble.method(self.candidates).check_against(num_layers, steps, f"{path}.ensemble"))
        if problems or steps is None:
            return problems
        from cos_ray.probes.search import check_merge_before_selection

        return config_problems(lambda: check_merge_before_selection(self.search(path), self.config(path), steps))

    def check_context(self, context, path: str):
        if self.verifier != "task" or not context.tasks:
            return ()
        bare = [task for task in context.tasks if getattr(task, "family", None) is None]
        if bare:
            return [(f"{path}.verifier", f"task needs tasks with a built-in scorer; task {bare[0].task_id} has none "
                                         f"({len(bare)} such task(s)); use verifier: consensus")]
        return ()

    def variants(self, context):
        """The search with `select_at` a step index (what the unit id hashes: `30%` and 3 of 10 are one unit)."""
        if context.steps is None:
            return [self]
        resolved = self.search("").resolved(context.steps)
        ensemble = self.ensemble
        if ensemble is not None:  # integer layers and steps, as the ensemble method's variant hashes them
            merged = self.config("").resolved(context.num_layers, context.steps)
            ensemble = dataclasses.replace(ensemble, layers=list(merged.layers), steps=list(merged.steps))
        return [dataclasses.replace(self, select_at=resolved.select_at,
                                    rounds=[dict(stage) for stage in resolved.rounds] or None, ensemble=ensemble)]

    def program(self, path: str) -> dict:
        return {"search": self.search(path)}
