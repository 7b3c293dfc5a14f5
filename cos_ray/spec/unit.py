"""A sweep's unit of work and its deterministic id.

A unit is one task x one method x one start seed: a baseline unit is one seed (one run), an ensemble unit its
`size` members (S..S+size-1, one unit because they are merged mid-run and succeed or fail together). Baselines are
not batched: a single-seed unit's result does not depend on how other seeds were batched (batching changes the last
bits), so it stays valid when the worker layout or seed list changes, and it is retried, resumed and extended one run
at a time.

The id hashes everything that decides the results - model identity (preset key or checkpoint hash, LoRA hashes),
sampler settings after defaults, the task's content, member seeds, method and its resolved parameters, probes, the
worker layout (seeds per worker), cos-ray's version - and nothing else (not the store, sweep name or grid position).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from cos_ray import __version__
from cos_ray.sampler import SamplerSettings
from cos_ray.spec.tasks import TaskRef


def unit_id(identity: dict) -> str:
    """16 hex digits of sha256 over the canonical JSON of a unit's identity."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    """What the coordinator runs as a whole; `cluster_unit()` turns it into `cos_ray.cluster.unit.Unit`."""

    unit_id: str
    model: str  # preset name or absolute checkpoint directory
    task: TaskRef
    method: str  # "baseline" | "ensemble" | ...
    params: dict  # the method's parameters as written in the spec (JSON column `params`)
    seeds: tuple[int, ...]  # member seeds, in member order
    settings: SamplerSettings  # after the model family's defaults
    layout: tuple[int, ...]  # seeds per worker of the group, e.g. (1, 1, 1)
    x0: object = None  # cos_ray.spec.probes.X0Spec or None
    method_spec: object = None  # the concrete MethodSpec (for its engine config and program)
    identity: dict = field(default_factory=dict, compare=False, repr=False)  # what the id hashes
    probes: dict = field(default_factory=dict)  # resolved probes that apply: {'energy': {...}, 'sensitivity': state}
    swap_source: TaskRef | None = None  # run B of a swap

    @property
    def run_ids(self) -> list[str]:
        """One per member, in member order: `{unit_id}-{member}`."""
        return [f"{self.unit_id}-{member}" for member in range(len(self.seeds))]

    def ensemble_config(self):
        """cos_ray.interventions.configs.EnsembleConfig, or None for independent runs."""
        return self.method_spec.config(f"methods.{self.method}") if self.method_spec is not None else None

    def x0_config(self):
        """cos_ray.engine.records.X0Config, or None."""
        return self.x0.config() if self.x0 is not None else None

    def program(self):
        """cos_ray.probes.program.Program (perturbation, energy, sensitivity, run B's task), or None for none."""
        from cos_ray.probes.program import Program

        fields = dict(self.method_spec.program(f"methods.{self.method}")) if self.method_spec is not None else {}
        if self.swap_source is not None:
            fields["swap_source"] = self.swap_source.load()
        energy = self.probes.get("energy")
        if energy is not None:
            from cos_ray.probes.configs import EnergyConfig

            fields["energy"] = EnergyConfig(layers=energy["layers"], steps=energy["steps"],
                                            max_side=energy["max_side"], field="probes.energy")
        if self.probes.get("sensitivity") is not None:
            fields["sensitivity"] = self.probes["sensitivity"]
        return Program(**fields) if fields else None

    def cluster_unit(self):
        """The coordinator's unit (reads the task's first frame; a generated task is written first)."""
        from cos_ray.cluster.unit import Unit as ClusterUnit

        return ClusterUnit(task=self.task.load(), settings=self.settings, seeds=self.seeds,
                           ensemble=self.ensemble_config(), x0=self.x0_config(), program=self.program(),
                           layout=self.layout)


def identity_of(model_identity: dict, settings: SamplerSettings, task: TaskRef, method: str, resolved_params: dict,
                seeds, layout, x0, probes: dict | None = None) -> dict:
    """The canonical, JSON-able description of a unit that `unit_id` hashes (`probes`: the resolved energy and
    sensitivity probes that apply to it; absent when none, so units without them keep their ids)."""
    identity = {
        "cos_ray": __version__,
        "model": model_identity,
        "settings": settings.as_dict(),
        "task": task.identity,
        "method": method,
        "params": resolved_params,
        "seeds": list(seeds),
        "layout": list(layout),
        "x0": None if x0 is None else {"every": x0.every, "decode": x0.decode},
    }
    if probes:
        identity["probes"] = probes
    return identity
