"""Scorers: VBVR's formulas, determinism, input forms (float, other sizes, x̂0 filmstrips), wrong answers, and the
per-step Chain-of-Steps outcome."""

from __future__ import annotations

import numpy as np
import pytest

from cos_ray.errors import UsageError
from cos_ray.tasks import colors
from cos_ray.tasks.families import get_family
from cos_ray.tasks.generation import family_params, generate_tasks
from cos_ray.tasks.bench import read_bench
from cos_ray.tasks.generators.common import fill_rect
from cos_ray.tasks.score import references, score_steps, score_video
from cos_ray.tasks.scorers import vbvr
from cos_ray.tasks.steps import chain_of_steps


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    for family in ("maze", "grid_path", "pattern"):
        generate_tasks(family, 1, 11, root)
    return {s.family: s for s in read_bench(root)}


def frames_of(family):
    return get_family(family).generate(np.random.default_rng([11, 0]), family_params(family)).frames


def test_vbvr_dimension_formulas(monkeypatch):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert vbvr.first_frame_consistency(image, image) == 1.0
    assert vbvr.final_frame_accuracy(image, image) == 1.0  # SSIM 1, PSNR infinite -> 1
    noisy = np.clip(image.astype(int) + rng.integers(-60, 61, image.shape), 0, 255).astype(np.uint8)
    assert vbvr.ssim(noisy, image) < 0.95 and vbvr.first_frame_consistency(noisy, image) < 1.0
    assert vbvr.psnr(noisy, image) == pytest.approx(10 * np.log10(255**2 / np.mean((noisy - image.astype(float)) ** 2)))
    with monkeypatch.context() as patch:  # the piecewise map and the SSIM/PSNR mix, at known SSIM and PSNR values
        for s, expected in [(0.97, 1.0), (0.95, 1.0), (0.90, 0.9), (0.775, 0.65), (0.35, 0.25), (-0.2, 0.0)]:
            patch.setattr(vbvr, "ssim", lambda a, b, s=s: s)
            assert vbvr.first_frame_consistency(image, image) == pytest.approx(expected)
        patch.setattr(vbvr, "ssim", lambda a, b: 0.6)
        patch.setattr(vbvr, "psnr", lambda a, b: 25.0)
        assert vbvr.final_frame_accuracy(image, image) == pytest.approx(0.7 * 0.6 + 0.3 * 0.25)
    still = np.repeat(image[None], 5, axis=0)
    assert vbvr.temporal_smoothness(still) == 1.0
    jumpy = np.stack([image, 255 - image, image, 255 - image])  # equal big jumps: no spread, max > 0.3
    assert vbvr.temporal_smoothness(jumpy) == pytest.approx(0.6)
    one_jump = np.stack([image, image, image, 255 - image])  # diffs 0, 0, ~0.5: spread > 0.1 and max > 0.3
    assert vbvr.temporal_smoothness(one_jump) == 0.0
    flat = np.full((3, 64, 64, 3), 128, np.uint8)
    assert vbvr.visual_quality(flat) == pytest.approx(0.4)  # no sharpness, no noise
    assert sum(vbvr.WEIGHTS.values()) == pytest.approx(1.0)
    assert vbvr.weighted({k: 1.0 for k in vbvr.WEIGHTS}) == pytest.approx(1.0)
    assert vbvr.weighted({**{k: 0.0 for k in vbvr.WEIGHTS}, "final_frame_accuracy": 1.0}) == pytest.approx(0.35)


@pytest.mark.parametrize("family", ["maze", "grid_path", "pattern"])
def test_scores_are_deterministic_and_accept_floats_and_other_sizes(tasks, family):
    task, frames = tasks[family], frames_of(family)
    a, b = score_video(frames, task), score_video(frames, task)
    assert a == b
    as_float = score_video(frames.astype(np.float32) / 255.0, task)
    assert as_float.task_specific == a.task_specific and as_float.overall == pytest.approx(a.overall)
    import cv2

    small = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in frames])  # the tiny model's size
    assert score_video(small, task).correct()


def test_wrong_answers_are_not_correct(tasks):
    maze = frames_of("maze").copy()
    walls = colors.wall_mask(maze[0])
    maze[-1][walls] = colors.PATH  # paint the path over every wall
    assert not score_video(maze, tasks["maze"]).correct()

    grid = frames_of("grid_path")
    wrong = np.repeat(grid[:1], len(grid), axis=0)
    assert not score_video(wrong, tasks["grid_path"]).correct()

    pattern = frames_of("pattern").copy()
    meta = tasks["pattern"].meta()
    answer = colors.saturated_mask(pattern[-1]) & ~colors.saturated_mask(pattern[0])
    other = next(rgb for rgb in ((40, 80, 220), (220, 40, 40)) if abs(colors.hue_of(rgb) - meta["answer_hue"]) > 20)
    pattern[-1][answer] = other  # right shape, wrong colour
    recoloured = score_video(pattern, tasks["pattern"])
    assert recoloured.details["answer"] == 0.0 and not recoloured.correct()


def test_grid_path_detour_scores_below_the_shortest_route(tasks):
    task = tasks["grid_path"]
    meta = task.meta()
    frames = frames_of("grid_path")
    origin, cell = meta["grid"]["origin"], meta["grid"]["cell"]
    # A detour: the agent's last frame stays at the goal, but one middle frame shows it two cells away from the route.
    frames = frames.copy()
    board = frames[0].copy()
    board[colors.band_mask(board, colors.PURPLE_BANDS)] = colors.WHITE
    r, c = meta["start"]
    far = next((rr, cc) for rr in range(meta["grid"]["cells"]) for cc in range(meta["grid"]["cells"])
               if [rr, cc] not in meta["blocked"] and abs(rr - r) + abs(cc - c) >= 4 and [rr, cc] not in meta["route"])
    detour = board.copy()
    fill_rect(detour, origin + far[1] * cell + cell * 0.2, origin + far[0] * cell + cell * 0.2,
              origin + (far[1] + 0.8) * cell, origin + (far[0] + 0.8) * cell, colors.AGENT)
    frames[1] = detour
    result = score_video(frames, task)
    assert result.details["goal_reached"] == 1.0 and result.details["shortest"] < 1.0


def test_score_steps_scores_each_filmstrip_row(tasks):
    task = tasks["maze"]
    frames = frames_of("maze")
    shown = np.linspace(0, len(frames) - 1, 8).round().astype(int)
    blurry = np.full_like(frames[shown], 128)
    filmstrip = np.stack([blurry, frames[shown][::-1], frames[shown]])  # (steps, 8, H, W, 3): noise, unsolved, solved
    scores = score_steps(filmstrip, references(task))
    assert [s.correct() for s in scores] == [False, False, True]
    assert scores[0].task_specific < 0.5
    with pytest.raises(UsageError, match="filmstrip"):
        score_steps(frames, task)


def test_chain_of_steps_first_stable_step_and_flips():
    outcome = chain_of_steps([0, 5, 10, 15, 20], [0.2, 0.95, 0.5, 0.92, 0.99])
    assert outcome.correct == [False, True, False, True, True]
    assert outcome.first_stable_step == 15 and outcome.flips == 3
    assert chain_of_steps([0, 1], [0.95, 0.3]).first_stable_step is None
    assert chain_of_steps([0, 1, 2], [0.9, 0.9, 0.9]) .first_stable_step == 0
    assert chain_of_steps([0, 1], [0.5, 0.7], threshold=0.6).first_stable_step == 1
    with pytest.raises(UsageError, match="2 steps but 1 scores"):
        chain_of_steps([0, 1], [0.5])
    with pytest.raises(UsageError, match="increase"):
        chain_of_steps([3, 1], [0.5, 0.5])


def test_bad_video_and_unknown_family_are_clear_errors(tasks):
    with pytest.raises(UsageError, match=r"video: expected frames shaped \(frames, H, W, 3\)"):
        score_video(np.zeros((4, 32, 32)), tasks["maze"])
    with pytest.raises(UsageError, match="task family 'chess'"):
        score_video(frames_of("maze"), tasks["maze"], family="chess")


@pytest.mark.parametrize("family", ["maze", "grid_path", "pattern"])
def test_any_frames_score_within_0_1(tasks, family):
    rng = np.random.default_rng(1)
    for video in (rng.integers(0, 256, (5, 48, 80, 3), dtype=np.uint8),  # noise, another aspect ratio
                  rng.random((1, 128, 128, 3)),  # a single float frame
                  np.zeros((3, 128, 128, 3), np.uint8)):
        result = score_video(video, tasks[family])
        values = [result.overall, result.task_specific, *result.dimensions.values()]
        assert all(0.0 <= v <= 1.0 for v in values), result
        assert not result.correct()
