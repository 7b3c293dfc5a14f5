"""`cos-ray tasks` as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def cos_ray(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cos_ray.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ})


def test_generate_and_score(tmp_path):
    out = tmp_path / "bench"
    result = cos_ray("tasks", "generate", "grid_path", "--n", "2", "--seed", "4", "--out", out,
                     "--cells", "5", "--obstacles", "0.2", "--size", "96", "--frames", "9")
    assert result.returncode == 0, result.stderr
    sample = out / "In-Domain_50" / "grid_path" / "00001"
    assert sorted(p.name for p in sample.iterdir()) == sorted([
        "first_frame.png", "prompt.txt", "final_frame.png", "ground_truth.mp4", "foreground_mask.png", "task.json"])
    meta = json.loads((sample / "task.json").read_text())
    assert meta["params"] == {"cells": 5, "obstacles": 0.2, "size": 96, "frames": 9} and meta["seed"] == 4

    scored = cos_ray("tasks", "score", sample / "ground_truth.mp4", sample)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["task_specific"] >= 0.95


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "bench"
    for args, message in [
        (["nope", "--n", "1"], "task family 'nope'"),
        (["maze", "--n", "0"], "n: expected an integer in 1..99999"),
        (["maze", "--n", "1", "--length", "4"], "maze: no parameter length"),
        (["pattern", "--n", "1", "--period", "6"], "pattern.period"),
        (["maze", "--n", "1", "--size", "129"], "maze.size: expected an even number"),
    ]:
        result = cos_ray("tasks", "generate", *args, "--out", out)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert not out.exists()
    result = cos_ray("tasks", "score", tmp_path / "none.mp4", tmp_path)
    assert result.returncode == 2 and "none.mp4 does not exist" in result.stderr
