"""Candidate routes read from hand-drawn frames: two branches, one route, none, a broken route; and commit_step.

The frames are drawn here with OpenCV on a 4 x 4 grid (white board, green start, red goal, orange strokes from cell
centre to cell centre as the maze generator draws its answer); the expected routes are what was drawn.
"""

from __future__ import annotations

import numpy as np
import pytest

from cos_ray.probes.exploration import candidate_columns, commit_step, route_answers
from cos_ray.tasks.routes import MAX_CANDIDATES, read_candidates

CELL, ORIGIN, N = 24, 8, 4
META = {"family": "maze", "grid": {"origin": ORIGIN, "cell": CELL, "cells": N}, "start": [0, 0], "goal": [3, 3]}
ORANGE, GREEN, RED, PURPLE = (255, 165, 0), (0, 200, 0), (220, 0, 0), (160, 32, 240)
SOLUTION = ((0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (3, 2), (3, 3))


def _centre(rc):
    return int(ORIGIN + (rc[1] + 0.5) * CELL), int(ORIGIN + (rc[0] + 0.5) * CELL)


def _frame(*strokes, gap=None) -> np.ndarray:
    """A (1, H, W, 3) uint8 maze frame with orange strokes along the given cell sequences; `gap`: a pair of cells
    whose joining segment is erased (a broken route)."""
    import cv2

    size = 2 * ORIGIN + N * CELL
    image = np.full((size, size, 3), 255, np.uint8)
    for k in range(N + 1):  # the grid's walls, drawn thin (the reader reads the strokes, not the walls)
        cv2.line(image, (ORIGIN + k * CELL, ORIGIN), (ORIGIN + k * CELL, ORIGIN + N * CELL), (20, 20, 20), 1)
        cv2.line(image, (ORIGIN, ORIGIN + k * CELL), (ORIGIN + N * CELL, ORIGIN + k * CELL), (20, 20, 20), 1)
    for stroke in strokes:
        for a, b in zip(stroke[:-1], stroke[1:]):
            cv2.line(image, _centre(a), _centre(b), ORANGE, 6)
    if gap is not None:
        (x1, y1), (x2, y2) = map(_centre, gap)
        cv2.rectangle(image, (min(x1, x2) + 7, min(y1, y2) - 4), (max(x1, x2) - 7, max(y1, y2) + 4), (255, 255, 255), -1)
    for rc, color in ((META["start"], GREEN), (META["goal"], RED)):
        x, y = _centre(rc)
        cv2.rectangle(image, (x - 5, y - 5), (x + 5, y + 5), color, -1)
    return image[None]


def test_one_drawn_route_is_one_candidate_reaching_the_goal():
    assert read_candidates(_frame(SOLUTION), "maze", META) == [SOLUTION]


def test_two_branches_are_two_candidates():
    branch = ((2, 0), (3, 0), (3, 1))  # a dead end leaving the route at (2, 0)
    routes = read_candidates(_frame(SOLUTION, branch), "maze", META)
    assert sorted(routes) == sorted([SOLUTION, ((0, 0), (1, 0), (2, 0), (3, 0), (3, 1))])


def test_nothing_drawn_is_no_candidate():
    assert read_candidates(_frame(), "maze", META) == []


def test_a_broken_route_is_one_candidate_ending_at_the_gap():
    routes = read_candidates(_frame(SOLUTION, gap=((2, 1), (2, 2))), "maze", META)
    assert routes == [((0, 0), (1, 0), (2, 0), (2, 1))]  # the piece beyond the gap is not joined to the start


def test_a_smear_is_capped():
    every_cell = [((r, 0), (r, 1), (r, 2), (r, 3)) for r in range(N)] + [((0, c), (1, c), (2, c), (3, c)) for c in range(N)]
    assert len(read_candidates(_frame(*every_cell), "maze", META)) == MAX_CANDIDATES


def test_grid_path_reads_the_agents_cells_over_frames():
    import cv2

    frames = _frame().repeat(4, axis=0)
    meta = {**META, "family": "grid_path", "agent_radius": 8}
    for k, cells in enumerate([[(0, 0)], [(0, 1), (1, 0)], [(0, 2), (2, 0)], [(0, 3)]]):  # two superposed agents
        for rc in cells:
            cv2.circle(frames[k], _centre(rc), 8, PURPLE, -1)
    assert sorted(read_candidates(frames, "grid_path", meta)) == [((0, 0), (0, 1), (0, 2), (0, 3)),
                                                                   ((0, 0), (1, 0), (2, 0))]


def test_no_reader_no_grid():
    assert read_candidates(_frame(SOLUTION), "pattern", META) is None
    assert read_candidates(_frame(SOLUTION), "maze", {"family": "maze"}) is None  # a VBVR-Bench maze: no grid


def test_answer_in_candidates_and_commit_step_follow_the_pruning():
    """Steps 0-1 hold two branches, step 2 both, steps 3-4 the route alone: committed at 3, the answer always held."""
    branch = ((0, 0), (1, 0), (2, 0), (3, 0), (3, 1))
    frames = {0: _frame(SOLUTION, branch[2:]), 1: _frame(branch), 2: _frame(SOLUTION, branch[2:]), 3: _frame(SOLUTION),
              4: _frame(SOLUTION)}
    by_step = {step: read_candidates(frame, "maze", META) for step, frame in frames.items()}
    columns = candidate_columns(by_step)
    assert [columns[s]["candidates"] for s in range(5)] == [2, 1, 2, 1, 1]
    assert [columns[s]["answer_in_candidates"] for s in range(5)] == [True, False, True, True, True]
    assert commit_step(*route_answers(by_step)) == 3


@pytest.mark.parametrize("answers, expected", [
    (["a", "b", "b"], 1), (["a", "a", "a"], 0), (["a", "b", "a"], 2), ([], None), (["a", None], None)])
def test_commit_step_is_the_first_step_of_the_final_answers_last_run(answers, expected):
    steps = [0, 5, 10, 15][:len(answers)]
    assert commit_step(steps, answers) == (None if expected is None else steps[expected])
