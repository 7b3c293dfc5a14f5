"""Per-step solved verdicts from x̂0 filmstrips: the tiles read back, lock-in and flips counted as by hand."""

import numpy as np

from cos_ray.media import filmstrip_grid
from cos_ray.figures.chain_of_steps import last_frames, lock_in_and_flips


def test_last_frames_are_the_last_column_of_each_step_row():
    rng = np.random.default_rng(0)
    strip = rng.integers(0, 256, size=(3, 4, 16, 16, 3), dtype=np.uint8)  # (steps, shown frames, h, w, 3)
    tiles = last_frames(filmstrip_grid(strip), steps=3, size=(16, 16))
    assert np.array_equal(tiles, strip[:, -1])


def test_tiles_smaller_than_the_task_are_scaled_up_to_its_pixel_grid():
    strip = np.zeros((2, 3, 8, 8, 3), dtype=np.uint8)
    strip[1, -1, :4, :4] = 255  # top-left quarter of the last frame at step 1
    tiles = last_frames(filmstrip_grid(strip), steps=2, size=(32, 32))
    assert tiles.shape == (2, 32, 32, 3)
    assert tiles[1, :16, :16].min() == 255 and tiles[1, 16:, 16:].max() == 0 and tiles[0].max() == 0


def test_lock_in_and_flips_as_counted_by_hand():
    table = np.array([[1, 1, 1, 1],   # solved throughout: locks in at 0, no flip
                      [0, 0, 1, 1],   # locks in at 2, one flip
                      [1, 0, 1, 1],   # wrong at 1, locks in at 2, two flips
                      [1, 1, 0, 0]],  # ends wrong: never, one flip
                     dtype=bool)
    got = lock_in_and_flips(table)
    assert got["lock_in"] == {"0": 1, "2": 2, "never": 1}
    assert got["flips"] == {"mean": 1.0, "runs_that_flip": 0.75, "flipped_and_solved": 0.5}
