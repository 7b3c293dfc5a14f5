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
"""

from __future__ import annotations

import re

BUILTIN_SCORERS = {
    "O-39": "maze",  # O-39_maze_data-generator: EvalKit's MazePathfindingEvaluator
}

_TASK_ID = re.compile(r"^([GO]-\d+)_")


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
