"""The unit of work, from expansion to the store: one task, one sampler setting, a set of seeds, and what to run them
with - a single run, independent runs, or an ensemble merged mid-run.

One class, one identity. `expand` builds every unit of a sweep with the engine's own configs already resolved
(`ensemble`, `x0`, `program`), its worker layout and its id; the coordinator runs that very object (resolving only
what a unit made by hand leaves open: the layout), and the store records it. A sweep's unit is one task x one method x
one start seed: a baseline unit is one seed (one run), an ensemble unit its `size` members (S..S+size-1, one unit
because they are merged mid-run and succeed or fail together). Baselines are not batched: a single-seed unit's result
does not depend on how other seeds were batched (batching changes the last bits), so it stays valid when the worker
layout or seed list changes, and it is retried, resumed and extended one run at a time.

The id hashes everything that decides the results - model identity (preset key or checkpoint hash, LoRA hashes),
sampler settings after defaults, the task's content, member seeds, method and its resolved parameters, probes, the
worker layout (seeds per worker), cos-ray's version - and nothing else (not the store, sweep name or grid position).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from cos_ray import __version__
from cos_ray.errors import UsageError


def unit_id(identity: dict) -> str:
    """16 hex digits of sha256 over the canonical JSON of a unit's identity."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    """`seeds` run on the workers of one group as `layout` says; with `ensemble`, merged across the whole group.

    A unit made by hand (tests, `cos-ray generate --workers`) gives the first fields only; `expand` also gives its
    `unit_id`, model, method and parameters, which a sweep's rows record.
    """

    task: object  # cos_ray.spec.tasks.TaskRef (read when the unit runs: `loaded()`) or cos_ray.tasks.folder.TaskInput
    settings: object  # cos_ray.sampler.SamplerSettings, after the model family's defaults
    seeds: tuple[int, ...]  # member seeds, in member order
    ensemble: object = None  # cos_ray.interventions.configs.EnsembleConfig, or None: independent runs
    x0: object = None  # cos_ray.engine.records.X0Config, or None
    program: object = None  # cos_ray.probes.program.Program (perturbation, probes, run B), or None
    layout: tuple[int, ...] | None = None  # seeds per worker, e.g. (1, 1, 1); None: spread evenly over the group
    # -- what a sweep records (set by `expand`) -----------------------------------------------------------------
    unit_id: str | None = None
    model: str | None = None  # preset name or absolute checkpoint directory
    method: str | None = None  # "baseline" | "ensemble" | "noise_at_step" | ...; None: a unit made by hand
    params: dict = field(default_factory=dict)  # the method's parameters as written in the spec (JSON column)
    method_spec: object = field(default=None, compare=False, repr=False)  # the spec's MethodSpec (`runs_model`)
    identity: dict = field(default_factory=dict, compare=False, repr=False)  # what the id hashes
    probes: dict = field(default_factory=dict)  # resolved probes that apply: {'energy': {...}, 'sensitivity': ...}

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(seed) for seed in self.seeds))
        if not self.seeds:
            raise UsageError("seeds: expected at least one seed")
        if self.ensemble is not None and self.ensemble.size != len(self.seeds):
            raise UsageError(
                f"{self.ensemble.field}.size is {self.ensemble.size} but the unit has {len(self.seeds)} seeds "
                f"{list(self.seeds)}; pass ensemble.member_seeds(seed)"
            )
        if self.layout is not None:
            object.__setattr__(self, "layout", tuple(int(count) for count in self.layout))
        if not self.identity:  # a unit made by hand: the same identity function, over its engine configs
            object.__setattr__(self, "identity", identity_of(
                None, self.settings, self.task, self.method, {"ensemble": _plain(self.ensemble),
                                                              "program": _plain(self.program)},
                self.seeds, self.layout, self.x0, self.probes))  # method None: the configs say what runs

    @property
    def run_ids(self) -> list[str]:
        """One per member, in member order: `{unit_id}-{member}`."""
        return [f"{self.unit_id}-{member}" for member in range(len(self.seeds))]

    @property
    def runs_model(self) -> bool:
        """False for a trivial baseline, made on the driver without model time (cos_ray.sweep.trivial)."""
        return self.method_spec is None or self.method_spec.runs_model

    @property
    def swap_source(self):
        """Run B of a swap (a TaskRef until `loaded()`), else None."""
        return getattr(self.program, "swap_source", None)

    def resolved(self, workers: int, default: tuple[int, ...] | None = None) -> "Unit":
        """This unit with its layout made explicit for a group of `workers` and checked against its seeds: its own,
        else `default` if it holds the unit's seeds, else an even split. A layout given is never changed (it is in the
        unit's id); one filled in here is written into the identity too."""
        from cos_ray.spec.layout import check_layout, even_layout

        if self.layout is not None:
            check_layout(self.layout, len(self.seeds), workers)
            return self
        if default is not None and sum(default) == len(self.seeds):
            layout = tuple(default)
        else:
            layout = even_layout(len(self.seeds), workers)
        layout = check_layout(layout, len(self.seeds), workers)
        return dataclasses.replace(self, layout=layout, identity={**self.identity, "layout": list(layout)})

    def loaded(self) -> "Unit":
        """This unit with its task inputs read (a generated task is written first): what is sent to the workers.
        Raises `InputError` / `UsageError` for an input that cannot be used (deterministic: never retried)."""
        task = self.task.load() if hasattr(self.task, "load") else self.task
        program = self.program
        if program is not None and hasattr(program.swap_source, "load"):
            program = dataclasses.replace(program, swap_source=program.swap_source.load())
        return dataclasses.replace(self, task=task, program=program)


def identity_of(model_identity: dict | None, settings, task, method: str, resolved_params: dict, seeds, layout, x0,
                probes: dict | None = None) -> dict:
    """The canonical, JSON-able description of a unit that `unit_id` hashes (`task`: a TaskRef - its content
    identity - or a TaskInput; `x0`: an X0Config; `probes`: the resolved energy and sensitivity probes that apply to
    it, absent when none, so units without them keep their ids)."""
    task_identity = getattr(task, "identity", None)
    if task_identity is None:
        task_identity = {"task_id": task.task_id, "prompt": getattr(task, "prompt", None)}
    identity = {
        "cos_ray": __version__,
        "model": model_identity,
        "settings": settings.as_dict() if hasattr(settings, "as_dict") else _plain(settings),
        "task": task_identity,
        "method": method,
        "params": resolved_params,
        "seeds": list(seeds),
        "layout": None if layout is None else list(layout),
        "x0": None if x0 is None else {"every": x0.every, "decode": x0.decode_every is not None},
    }
    if probes:
        identity["probes"] = probes
    return identity


def _plain(value):
    """A config as JSON-able data (dataclasses as dicts; anything else not JSON-able as its str)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
