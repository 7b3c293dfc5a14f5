"""The task families cos-ray can generate and score: one entry ties a generator, its parameters and its scorer.

A VBVR-Bench sample (no task.json) finds its family through `cos_ray.tasks.vbvr_ids` - the table of official task
ids (`O-39` -> maze) - or, for trees cos-ray generated, a task folder named like a family. A sample with no family
still runs; its scores are null (VBVR-EvalKit scores it: `cos-ray score --evalkit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cos_ray.errors import UsageError
from cos_ray.tasks.generators.grid_path import GridPathParams, generate_grid_path
from cos_ray.tasks.generators.maze import MazeParams, generate_maze
from cos_ray.tasks.generators.pattern import PatternParams, generate_pattern
from cos_ray.tasks.scorers.grid_path import score_grid_path
from cos_ray.tasks.scorers.maze import score_maze
from cos_ray.tasks.scorers.pattern import score_pattern


@dataclass(frozen=True)
class Family:
    name: str
    params: type  # the generator's parameter dataclass (validates itself)
    generate: Callable  # (numpy Generator, params) -> GeneratedSample
    score: Callable  # (video, first, final, meta) -> (task-specific score, details)
    threshold: float = 0.9  # a run is correct at a step when its task-specific score reaches this
    needs_meta: bool = False  # the scorer reads task.json (generated samples only)


FAMILIES = {
    "maze": Family("maze", MazeParams, generate_maze, score_maze),
    "grid_path": Family("grid_path", GridPathParams, generate_grid_path, score_grid_path, needs_meta=True),
    "pattern": Family("pattern", PatternParams, generate_pattern, score_pattern, needs_meta=True),
}


def get_family(name: str | None) -> Family:
    if name is None:
        raise UsageError("this task has no built-in scorer (cos_ray.tasks.vbvr_ids maps VBVR task ids to scorers): "
                         f"score it with VBVR-EvalKit (`cos-ray score SWEEP --evalkit`), or name a family "
                         f"({', '.join(FAMILIES)})")
    if name not in FAMILIES:
        raise UsageError(f"task family {name!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
