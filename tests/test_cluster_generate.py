"""`cos-ray generate --workers N`: an ensemble spread over Ray workers, written like the in-process one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cos_ray.cli import main

pytestmark = pytest.mark.timeout(240)


def test_generate_with_workers_writes_every_member(ray_cluster, tiny_model, task_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(task_dir), "--ensemble", "3", "--workers", "2", "--merge",
                                       "update", "--steps", "4", "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 3 video(s)" in result.output
    record = json.loads((out / "settings.json").read_text())
    assert record["workers"]["layout"] == [2, 1] and record["seeds"] == [0, 1, 2]
    assert record["ensemble"]["merge"] == "update" and record["settings"]["steps"] == 4
    for member in range(3):
        steps = json.loads((out / f"member-{member}" / "steps.json").read_text())
        assert steps["member"] == member and len(steps["steps"]) == 4
        assert (out / f"member-{member}" / "video.mp4").stat().st_size > 0


def test_more_workers_than_seeds_is_a_usage_error(task_dir, tmp_path):
    result = CliRunner().invoke(main, ["generate", str(task_dir), "--ensemble", "3", "--workers", "4",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--workers: expected 1..3 (one seed per worker at most) for 3 seed(s), got 4" in result.output


def test_the_driver_side_imports_no_torch():
    code = ("import sys, cos_ray.cli, cos_ray.cluster.coordinator, cos_ray.cluster.group, cos_ray.cluster.videos_on_ray; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
