"""VBVR-layout folders: generate -> read round-trips; missing files are clear errors; nothing partial is left."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cos_ray.errors import UsageError
from cos_ray.tasks import writer
from cos_ray.tasks.bench import read_bench, read_tasks
from cos_ray.tasks.folder import read_task_folder
from cos_ray.tasks.generation import generate_tasks
from cos_ray.tasks.scorers.frames import read_rgb

FILES = {"first_frame.png", "prompt.txt", "final_frame.png", "ground_truth.mp4", "foreground_mask.png", "task.json"}


def test_generate_then_read_round_trips(tmp_path):
    folders = generate_tasks("maze", 3, 5, tmp_path, split="Out-of-Domain_50", task="maze_small", cells=4, frames=9)
    assert [f.relative_to(tmp_path).as_posix() for f in folders] == [
        f"Out-of-Domain_50/maze_small/{i:05d}" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "Out-of-Domain_50" / "maze_small").iterdir()) == ["00000", "00001", "00002"]
    samples = read_bench(tmp_path)
    assert [s.task_id for s in samples] == [f"Out-of-Domain_50/maze_small/{i:05d}" for i in range(3)]
    first = samples[0]
    assert {p.name for p in folders[0].iterdir()} == FILES
    assert first.split == "Out-of-Domain_50" and first.task == "maze_small" and first.family == "maze"
    assert first.prompt.startswith("Draw the orange path") and first.image().size == (128, 128)
    meta = first.meta()
    assert meta["seed"] == 5 and meta["params"]["cells"] == 4 and meta["family"] == "maze"
    from cos_ray.media import read_video

    video = read_video(first.ground_truth_path)
    assert video.shape == (9, 128, 128, 3)
    mask = read_rgb(first.foreground_mask_path)[..., 0]
    assert set(np.unique(mask)) == {0, 255}
    assert not np.array_equal(read_rgb(first.image_path), read_rgb(first.final_frame_path))
    assert read_tasks(tmp_path) == samples  # a tree is recognised as one
    assert read_tasks(folders[1]) == [samples[1]]  # so is one sample folder
    assert read_tasks(tmp_path / "Out-of-Domain_50" / "maze_small") == [  # and a folder of sample folders
        read_task_folder(f) for f in folders]


def test_same_seed_writes_the_same_samples(tmp_path):
    a = generate_tasks("pattern", 2, 9, tmp_path / "a")
    b = generate_tasks("pattern", 3, 9, tmp_path / "b")  # n does not change the first samples
    for x, y in zip(a, b):
        assert np.array_equal(read_rgb(x / "final_frame.png"), read_rgb(y / "final_frame.png"))
        assert json.loads((x / "task.json").read_text()) == json.loads((y / "task.json").read_text())


def test_plain_folder_has_no_ground_truth(tmp_path, task_dir):
    task = read_task_folder(task_dir)
    assert task.split is None and task.final_frame_path is None and task.family is None and task.meta() == {}


@pytest.mark.parametrize("missing", ["final_frame.png", "ground_truth.mp4", "prompt.txt", "first_frame.png"])
def test_missing_file_names_the_sample_and_the_file(tmp_path, missing):
    (folder,) = generate_tasks("grid_path", 1, 0, tmp_path)
    (folder / missing).unlink()
    with pytest.raises(UsageError, match=rf"task .*In-Domain_50/grid_path/00000: missing {missing}"):
        read_bench(tmp_path)


def test_scoring_without_final_frame_or_task_json_is_a_clear_error(tmp_path):
    from cos_ray.tasks.score import score_video

    (folder,) = generate_tasks("grid_path", 1, 0, tmp_path)
    video = np.zeros((2, 128, 128, 3), np.uint8)
    (folder / "task.json").unlink()
    with pytest.raises(UsageError, match="missing task.json of family grid_path"):
        score_video(video, read_task_folder(folder))
    (folder / "final_frame.png").unlink()
    with pytest.raises(UsageError, match="missing final_frame.png"):
        score_video(video, read_task_folder(folder), family="maze")


def test_bench_errors(tmp_path):
    with pytest.raises(UsageError, match="no VBVR split folder"):
        read_bench(tmp_path)
    with pytest.raises(UsageError, match="split 'train'"):
        read_bench(tmp_path, splits=["train"])
    generate_tasks("maze", 1, 0, tmp_path)
    with pytest.raises(UsageError, match="no task folder chess"):
        read_bench(tmp_path, tasks=["chess"])
    with pytest.raises(UsageError, match="not a folder"):
        read_tasks(tmp_path / "nowhere")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import cos_ray.media

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cos_ray.media, "write_video", broken)
    with pytest.raises(OSError, match="disk full"):
        generate_tasks("maze", 2, 0, tmp_path)
    task_dir = tmp_path / "In-Domain_50" / "maze"
    assert list(task_dir.iterdir()) == []  # no sample, no staging folder


def test_existing_sample_is_refused_before_anything_is_written(tmp_path):
    generate_tasks("maze", 1, 0, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError, match="00000: already exists"):
        generate_tasks("maze", 3, 0, tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("kwargs,message", [
    ({"cells": 1}, "maze.cells: expected an integer in 2..8"),
    ({"size": 130, "cells": 100}, "maze.cells"),
    ({"frames": 1}, "maze.frames"),
    ({"obstacles": 0.2}, "maze: no parameter obstacles"),
])
def test_bad_parameters_name_the_field(tmp_path, kwargs, message):
    with pytest.raises(UsageError, match=message):
        generate_tasks("maze", 1, 0, tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_writer_refuses_existing_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(UsageError, match="already exists"):
        writer.write_sample(tmp_path / "x", None, fps=16)
