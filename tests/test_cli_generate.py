"""`cos-ray generate` and the CLI's start-up cost, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from cos_ray.media import read_video


def cos_ray(*args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "cos_ray.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ},
    )


def test_help_imports_no_torch_diffusers_or_ray():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cos_ray.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'ray') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.fixture(scope="module")
def first_run(task_dir, tmp_path_factory):
    """One real `generate` (with x̂0 filmstrips): checked as is, and copied as the earlier run the refusal and
    `--overwrite` tests write over (a generate process fewer each)."""
    out = tmp_path_factory.mktemp("first-run") / "out"
    result = cos_ray("generate", task_dir, "--model", "tiny", "--seed", "3", "--steps", "4", "--x0-every", "2",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_generate_writes_video_and_settings(first_run):
    out = first_run
    assert (out / "filmstrip.png").is_file()
    video = read_video(out / "video.mp4")
    assert video.shape == (9, 64, 64, 3)
    record = json.loads((out / "settings.json").read_text())
    assert record["seeds"] == [3] and record["model"] == "tiny" and record["settings"]["steps"] == 4
    assert record["settings"]["guidance"] == 5.0 and record["task"]["prompt"].startswith("draw the path")


def test_generate_with_image_and_prompt(task_dir, tmp_path):
    out = tmp_path / "out"
    result = cos_ray("generate", "--image", task_dir / "first_frame.png", "--prompt", "solve the maze",
                     "--steps", "2", "--frames", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    assert read_video(out / "video.mp4").shape[0] == 5


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty_task"
    empty.mkdir()
    out = tmp_path / "out"
    result = cos_ray("generate", empty, "--out", out)
    assert result.returncode == 2
    assert "missing first_frame.png" in result.stderr
    result = cos_ray("generate", "--image", tmp_path / "none.png", "--prompt", "x", "--out", out)
    assert result.returncode == 2 and "none.png does not exist; expected an image" in result.stderr
    (empty / "first_frame.png").write_bytes(b"")
    (empty / "prompt.txt").write_text("go")
    result = cos_ray("generate", empty, "--frames", "8", "--out", out)
    assert result.returncode == 2 and "frames: expected a count of the form 4k+1" in result.stderr
    assert not out.exists()


def test_generate_ensemble_writes_each_member_with_filmstrips(task_dir, tmp_path):
    out = tmp_path / "out"
    result = cos_ray("generate", task_dir, "--seed", "4", "--steps", "4", "--ensemble", "3", "--merge", "update",
                     "--ensemble-steps", "0-1", "--x0-every", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "settings.json").read_text())
    assert record["seeds"] == [4, 5, 6] and record["ensemble"]["merge"] == "update"
    videos = [read_video(out / f"member-{k}" / "video.mp4") for k in range(3)]
    assert all(video.shape == (9, 64, 64, 3) for video in videos)
    steps = json.loads((out / "member-1" / "steps.json").read_text())
    assert steps["seed"] == 5 and [s["step"] for s in steps["steps"]] == [0, 1, 2, 3]
    assert steps["filmstrip_steps"] == [0, 2, 3] and "x0_std" in steps["steps"][2]
    from PIL import Image

    import numpy as np

    with Image.open(out / "member-2" / "filmstrip.png") as strip:
        pixels = np.asarray(strip.convert("RGB"))
    # 8 frames shown (of 9) per row, one row per decoded step, below and right of a white label margin
    top, left = pixels.shape[0] - 3 * 64, pixels.shape[1] - 8 * 64
    assert 0 < top < 64 and 0 < left < 128
    margin_rows = [pixels[top + row * 64: top + (row + 1) * 64, :left] for row in range(3)]
    assert all((tile < 128).any() for tile in margin_rows), "each row names its step in the left margin"
    header = [pixels[:top, left + column * 64: left + (column + 1) * 64] for column in range(8)]
    assert all((cell < 128).any() for cell in header), "each column names its frame in the top margin"
    assert (pixels[:top, :left] == 255).all(), "the corner stays blank"


def test_generate_rejects_out_of_range_ensemble_layers(task_dir, tmp_path):
    out = tmp_path / "out"
    result = cos_ray("generate", task_dir, "--ensemble", "2", "--ensemble-layers", "30-45", "--out", out)
    assert result.returncode == 2 and "ensemble.layers: '30-45' reaches layer 45, out of range 0-39" in result.stderr
    assert not out.exists()


def test_configs_import_without_torch_or_diffusers():
    code = (
        "import sys\n"
        "from cos_ray.engine.records import X0Config\n"
        "from cos_ray.interventions.ensemble import EnsembleConfig\n"
        "from cos_ray.interventions.configs import NoiseAtStepConfig, NoiseAtFrameConfig, SwapConfig\n"
        "from cos_ray.probes.configs import EnergyConfig\n"
        "from cos_ray.sampler import default_settings\n"
        "print(','.join(m for m in ('torch', 'diffusers', 'transformers', 'ray') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_second_run_into_one_out_is_refused_and_changes_nothing(task_dir, tmp_path, first_run):
    out = tmp_path / "out"
    shutil.copytree(first_run, out)  # a first run's output
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    second = cos_ray("generate", task_dir, "--ensemble", "2", "--steps", "2", "--frames", "5", "--out", out)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert "is not empty" in second.stderr and "--overwrite" in second.stderr
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_overwrite_leaves_only_the_second_runs_files(task_dir, tmp_path, first_run):
    out = tmp_path / "out"
    shutil.copytree(first_run, out)  # a first run's output
    assert (out / "video.mp4").is_file() and (out / "filmstrip.png").is_file()
    second = cos_ray("generate", task_dir, "--ensemble", "2", "--steps", "2", "--frames", "5", "--out", out,
                     "--overwrite")
    assert second.returncode == 0, second.stderr
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    assert files == ["member-0/steps.json", "member-0/video.mp4", "member-1/steps.json", "member-1/video.mp4",
                     "settings.json"]
    assert json.loads((out / "settings.json").read_text())["seeds"] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_that_is_a_file_is_refused_before_the_model_loads(task_dir, tmp_path):
    out = tmp_path / "out"
    out.write_text("keep me")
    result = cos_ray("generate", task_dir, "--out", out, timeout=60)
    assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr
    assert out.read_text() == "keep me"


def test_no_library_notices_reach_the_user(task_dir, tmp_path):
    """Ray's token-auth notice (a fresh local cluster, RAY_AUTH_MODE unset as a user has it), transformers'
    torchvision fallback and its weight-loading bar are silenced where they are made; cos-ray's own lines remain."""
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    result = subprocess.run(
        [sys.executable, "-m", "cos_ray.cli", "generate", str(task_dir), "--steps", "2", "--frames", "5",
         "--workers", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    for notice in ("Token authentication", "torchvision", "Loading weights"):
        assert notice not in result.stderr + result.stdout, f"{notice!r} printed:\n{result.stderr}"
    assert "wrote 1 video(s)" in result.stdout
