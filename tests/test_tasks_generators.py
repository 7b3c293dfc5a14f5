"""Generators: ground truth scores at the top, a still first frame scores low, VBVR's maze conventions hold,
and samples are reproducible from their seed."""

from __future__ import annotations

import numpy as np
import pytest

from cos_ray.media import read_video
from cos_ray.tasks import colors
from cos_ray.tasks.bench import read_bench
from cos_ray.tasks.families import FAMILIES, get_family
from cos_ray.tasks.generation import family_params, generate_tasks
from cos_ray.tasks.score import score_video
from cos_ray.tasks.scorers.maze import score_maze

FAMILY_NAMES = sorted(FAMILIES)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    for family in FAMILY_NAMES:
        generate_tasks(family, 2, 7, root)
    return {sample.task_id: sample for sample in read_bench(root)}


def sample(family, seed=0, **params):
    return get_family(family).generate(np.random.default_rng([seed, 0]), family_params(family, **params))


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_ground_truth_scores_at_the_top(bench, family):
    for idx in ("00000", "00001"):
        task = bench[f"In-Domain_50/{family}/{idx}"]
        exact = sample(family, seed=7) if idx == "00000" else None
        decoded = score_video(read_video(task.ground_truth_path), task)  # through H.264
        assert decoded.task_specific >= 0.95 and decoded.correct(), decoded.details
        assert decoded.dimensions["first_frame_consistency"] > 0.95
        if exact is not None:  # the lossless frames, exactly as generated
            lossless = score_video(exact.frames, task)
            assert lossless.task_specific >= 0.99, lossless.details
            assert lossless.dimensions["first_frame_consistency"] == 1.0
            assert lossless.dimensions["final_frame_accuracy"] == 1.0


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_still_first_frame_scores_low(bench, family):
    task = bench[f"In-Domain_50/{family}/00000"]
    video = read_video(task.ground_truth_path)
    still = score_video(np.repeat(video[:1], len(video), axis=0), task)
    solved = score_video(video, task)
    assert still.task_specific <= 0.35 and not still.correct()
    assert still.overall < solved.overall - 0.1


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_same_seed_same_sample_other_seed_other_sample(family):
    a, b, c = sample(family, 3), sample(family, 3), sample(family, 4)
    assert np.array_equal(a.frames, b.frames) and a.meta == b.meta
    assert not np.array_equal(a.frames, c.frames)
    assert np.array_equal(a.frames[0], a.first_frame) and not np.array_equal(a.first_frame, a.final_frame)
    assert a.foreground.any() and not a.foreground.all()


@pytest.mark.parametrize("size,cells", [(64, 3), (128, 5), (128, 8), (256, 6), (512, 2)])
def test_maze_follows_vbvr_conventions(size, cells):
    for seed in range(4):
        maze = sample("maze", seed, size=size, cells=cells, frames=5)
        first, final = maze.first_frame, maze.final_frame
        assert first.shape == (size, size, 3)
        gray = first.mean(axis=-1)
        palette = {tuple(int(v) for v in c) for c in np.unique(first.reshape(-1, 3), axis=0)}
        assert palette == {colors.WHITE, colors.WALL, colors.START, colors.GOAL}  # no anti-aliased in-betweens
        assert (gray <= colors.WALL_GRAY_MAX).sum() > size  # walls are near-black
        assert colors.band_mask(first, colors.GREEN_BANDS).any() and colors.band_mask(first, colors.RED_BANDS).any()
        assert not colors.band_mask(first, colors.ORANGE_BANDS).any()  # no path before the answer
        path = colors.band_mask(final, colors.ORANGE_BANDS)
        assert not (path & colors.wall_mask(first)).any()  # the solution stays in the corridors
        score, details = score_maze(maze.frames, first, final, {})
        assert score == 1.0, details  # includes > 50 path pixels within 30 px of both markers, one connected path
        drawn = [colors.band_mask(f, colors.ORANGE_BANDS).sum() for f in maze.frames]
        assert drawn[0] == 0 and all(a <= b for a, b in zip(drawn[:-1], drawn[1:]))  # drawn progressively


def test_grid_path_agent_is_purple_and_moves_along_free_cells():
    grid = sample("grid_path", 1)
    meta = grid.meta
    assert len(meta["route"]) - 1 == meta["shortest"] >= meta["grid"]["cells"] - 1
    assert not {tuple(rc) for rc in meta["route"]} & {tuple(rc) for rc in meta["blocked"]}
    for frame in grid.frames:
        assert colors.band_mask(frame, colors.PURPLE_BANDS).sum() > 20
        assert not colors.band_mask(frame, colors.RED_BANDS).any()  # purple, not the red goal's band


def test_pattern_answer_continues_the_motif():
    for seed in range(5):
        pattern = sample("pattern", seed, length=7)
        seq, period = pattern.meta["sequence"], pattern.meta["params"]["period"]
        assert all(seq[i] == seq[i % period] for i in range(len(seq)))
        assert pattern.meta["answer"] == seq[-1]
