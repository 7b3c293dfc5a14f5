"""A unit of work: one task, one sampler setting, a set of seeds - a single run, independent runs, or an ensemble.

What the coordinator feeds to a group in lockstep, and what a sweep identifies, stores and retries as a whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cos_ray.errors import UsageError


@dataclass(frozen=True)
class Unit:
    """`seeds` run on the workers of one group as `layout` says; with `ensemble`, merged across the whole group."""

    task: object  # cos_ray.tasks.folder.TaskInput
    settings: object  # cos_ray.sampler.SamplerSettings
    seeds: tuple[int, ...]
    ensemble: object = None  # cos_ray.interventions.configs.EnsembleConfig, or None: independent runs
    x0: object = None  # cos_ray.engine.records.X0Config, or None
    program: object = None  # cos_ray.engine.program.Program (perturbation, probes, companion runs), or None
    layout: tuple[int, ...] | None = None  # seeds per worker; None: spread evenly over the group (see layout.py)

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

    def identity(self) -> dict:
        """What decides the unit's results (JSON-able): the layout is in it, since batching changes the last bits."""
        def plain(value):
            if dataclasses.is_dataclass(value):
                return plain(dataclasses.asdict(value))
            if isinstance(value, dict):
                return {key: plain(item) for key, item in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(item) for item in value]
            return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)

        return {
            "task_id": self.task.task_id,
            "prompt": self.task.prompt,
            "settings": plain(self.settings),
            "seeds": list(self.seeds),
            "ensemble": plain(self.ensemble),
            "x0": plain(self.x0),
            "program": plain(self.program),
            "layout": list(self.layout) if self.layout is not None else None,
        }

    def resolved(self, workers: int) -> "Unit":
        """This unit with its layout made explicit for a group of `workers` (checked against its seeds)."""
        from cos_ray.cluster.layout import check_layout, even_layout

        layout = self.layout if self.layout is not None else even_layout(len(self.seeds), workers)
        return dataclasses.replace(self, layout=check_layout(layout, len(self.seeds), workers))
