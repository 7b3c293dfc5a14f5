"""Official VBVR-Bench task ids -> cos-ray's built-in scorers, where the two measure the same task.

VBVR-Bench names its task folders by task id (`O-39_maze_data-generator`, `G-131_select_next_figure_...`); the id is
the part before the first underscore (`O-39`). A task whose id is in `BUILTIN_SCORERS` is scored by that family's
scorer in every sweep; any other task still runs and is stored in full, with null scores and the reason
`no_scorer_reason` gives - VBVR-EvalKit (`cos-ray score --evalkit`) scores those.

Which ids are mapped, and why:
- `O-39` (maze, Out-of-Domain_50) -> `maze`: cos-ray's maze scorer implements EvalKit's MazePathfindingEvaluator rules
  (orange path, green start, red goal, near-black walls; path validity, completeness, navigation, walls kept) and
  reads only the sample's first and final frames, as VBVR samples have them.
- `G-18` (grid shortest path, In-Domain_50) is NOT mapped: EvalKit's G-18 tracks a pink/purple/orange/red circular
  agent onto a pink or red endpoint square and judges Manhattan optimality from the video alone, while cos-ray's
  `grid_path` draws a purple disc, a green goal cell and black obstacles, and its scorer reads the grid geometry from
  task.json, which VBVR samples do not have. Scoring G-18 with it would measure another task.
Folders named after a cos-ray family (`maze`, `grid_path`, `pattern`: trees made by `cos-ray tasks generate`) keep
their family's scorer.

The same table read the other way names the VBVR-Bench task a generated family's samples are, for VBVR-EvalKit, which
picks its evaluator by task folder name: cos-ray's maze generator draws VBVR's maze conventions (see
`cos_ray.tasks.generators.maze`), so a generated `maze` is exported and scored as `O-39_maze_data-generator`.
`grid_path` and `pattern` have no EvalKit task (`evalkit_task` refuses them).
"""

from __future__ import annotations

import re

from cos_ray.errors import UsageError

VBVR_TASKS = {  # VBVR-Bench task folder (EvalKit's registry key) -> the cos-ray family that scores and generates it
    "O-39_maze_data-generator": "maze",  # EvalKit's MazePathfindingEvaluator
}

_TASK_ID = re.compile(r"^([GO]-\d+)_")
BUILTIN_SCORERS = {_TASK_ID.match(name).group(1): family for name, family in VBVR_TASKS.items()}  # "O-39" -> "maze"
EVALKIT_TASKS = {family: name for name, family in VBVR_TASKS.items()}  # "maze" -> "O-39_maze_data-generator"


def task_id_of(task: str | None) -> str | None:
    """The official id of a VBVR task folder name (`O-39_maze_data-generator` -> `O-39`), None for other names."""
    match = _TASK_ID.match(task or "")
    return match.group(1) if match else None


def scorer_family(task: str | None) -> str | None:
    """The built-in family that scores the task folder `task`, or None when cos-ray has no scorer for it."""
    from cos_ray.tasks.families import FAMILIES

    if task is None:
        return None
    official = task_id_of(task)
    if official is not None:
        return BUILTIN_SCORERS.get(official)
    return task if task in FAMILIES else None


def no_scorer_reason(task: str | None, task_id: str) -> str:
    """Why a sample's runs carry null scores (the runs table's `score_reason`)."""
    name = task or task_id
    return f"no built-in scorer for {name}: score with `cos-ray score --evalkit`"


def evalkit_task(task: str) -> str:
    """The task folder name EvalKit knows `task` by: an official name as it is, a family by `EVALKIT_TASKS`."""
    if task_id_of(task) is not None:
        return task
    if task in EVALKIT_TASKS:
        return EVALKIT_TASKS[task]
    known = ", ".join(f"{family} -> {name}" for family, name in EVALKIT_TASKS.items())
    raise UsageError(f"task {task!r}: VBVR-EvalKit has no evaluator for it (it picks one by VBVR-Bench task folder "
                     f"name; cos-ray maps {known}, see cos_ray/tasks/vbvr_ids.py)")
