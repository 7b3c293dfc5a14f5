"""Task inputs judged before GPU time: `cos-ray spec check` opens every sample's files and reports every bad one at
once; a sample that goes bad after the check fails as an InputError (deterministic), not as an OSError."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cos_ray.cli import main
from cos_ray.errors import InputError
from cos_ray.spec.load import load_spec

TASKS = Path(__file__).resolve().parents[1] / "jobs" / "tasks"
MAZE = TASKS / "In-Domain_50" / "maze" / "00000"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose data is one empty IDAT: a decompression-bomb shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# sample -> (how it is broken, the phrase its problem must hold)
BROKEN = {
    "00001": (lambda d: (d / "first_frame.png").write_bytes(b""), "first_frame.png is empty (0 bytes)"),
    "00002": (lambda d: (d / "first_frame.png").write_bytes((MAZE / "first_frame.png").read_bytes()[:-30]),
              "first_frame.png cannot be decoded"),
    "00003": (lambda d: (d / "first_frame.png").write_bytes(b"GIF? no: plain text\n"),
              "first_frame.png is not an image PIL can read"),
    "00004": (lambda d: (d / "prompt.txt").write_bytes("Trace le chemin jusqu'\xe0 la sortie".encode("latin-1")),
              "prompt.txt is not UTF-8: byte 0xe0 at offset 22"),  # 22 = len("Trace le chemin jusqu'")
    "00005": (lambda d: (d / "ground_truth.mp4").write_bytes((MAZE / "ground_truth.mp4").read_bytes()[:2000]),
              "ground_truth.mp4 is truncated"),
    "00006": (lambda d: (d / "first_frame.png").write_bytes(_png_header_only(100_000, 100_000)),
              "first_frame.png is too large to decode"),
    "00009": (lambda d: (d / "first_frame.png").write_bytes(_png_header_only(5000, 5000)),
              "first_frame.png is 5000x5000: more than 16,777,216 pixels"),
    "00007": (lambda d: (d / "prompt.txt").write_text("x" * 70_000),
              "70,000 bytes exceeds the limit of 65,536 bytes for a prompt"),
    "00008": (lambda d: Image.new("RGB", (8, 8)).save(d / "first_frame.png"), "each side must be at least 16"),
}


@pytest.fixture()
def bench(tmp_path) -> Path:
    """A VBVR-layout tree: the maze sample copied as 00000 (good) and 00001.. broken one way each."""
    root = tmp_path / "bench"
    for index in ["00000", *BROKEN]:
        shutil.copytree(MAZE, root / "In-Domain_50" / "maze" / index)
    return root


def _spec(tmp_path: Path, folder: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"model: tiny\ntasks: {folder}\nmethods: [baseline]\nout: {tmp_path / 'results'}\n")
    return spec


def test_good_tree_passes_the_check(tmp_path, bench):
    result = CliRunner().invoke(main, ["spec", "check", str(_spec(tmp_path, bench))])
    assert result.exit_code == 0, result.output
    assert f"{len(BROKEN) + 1} unit(s)" in result.output  # one baseline unit per sample


def test_spec_check_reports_every_bad_sample_at_once(tmp_path, bench):
    for index, (breaks, _) in BROKEN.items():
        breaks(bench / "In-Domain_50" / "maze" / index)
    result = CliRunner().invoke(main, ["spec", "check", str(_spec(tmp_path, bench))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{len(BROKEN)} problem(s)" in result.output, result.output
    for index, (_, phrase) in BROKEN.items():
        line = next((line for line in result.output.splitlines() if f"/maze/{index}" in line), None)
        assert line is not None and phrase in line and line.strip().startswith("tasks.folder:"), (index, line)
    assert "maze/00000" not in result.output  # the good sample is not blamed
    assert not (tmp_path / "results").exists()


def test_independent_readers_agree_the_files_are_broken(bench):
    """The corruptions are real: PIL cannot decode the frames the check refused (a reader not under test)."""
    for index in ("00002", "00003"):
        BROKEN[index][0](bench / "In-Domain_50" / "maze" / index)
        with pytest.raises(Exception):
            with Image.open(bench / "In-Domain_50" / "maze" / index / "first_frame.png") as image:
                image.load()


def test_a_frame_that_goes_bad_after_the_check_is_an_input_error(tmp_path, bench):
    spec = load_spec(_spec(tmp_path, bench))  # checked: every sample good
    refs = {ref.task_id.rsplit("/", 1)[-1]: ref for ref in spec.points[0].tasks}
    (bench / "In-Domain_50" / "maze" / "00001" / "first_frame.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InputError, match="first_frame.png"):
        refs["00001"].load().image()
    (bench / "In-Domain_50" / "maze" / "00002" / "prompt.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="prompt.txt is not UTF-8: byte 0xff at offset 0"):
        refs["00002"].load()
    assert refs["00000"].load().image().size == Image.open(MAZE / "first_frame.png").size


@pytest.mark.timeout(600)
def test_a_frame_broken_after_the_check_fails_its_unit_once_on_the_cluster(ray_cluster, tiny_model, tmp_path, bench):
    """The real worker path: the spec checked, then the frame broken; the unit fails once with an InputError naming
    the file - no retry, no fresh group, the group kept - and the next unit runs on the same group."""
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.waits import Timeouts
    from cos_ray.spec.expand import expand

    spec_path = tmp_path / "cluster.yaml"
    spec_path.write_text(f"model: tiny\ntasks: {{folder: {bench}, limit: 2}}\nmethods: [baseline]\nseeds: [1]\n"
                         f"sampler: {{steps: 2, frames: 5}}\n")
    units = {unit.task.task_id.rsplit("/", 1)[-1]: unit for unit in expand(load_spec(spec_path))}  # all good
    (bench / "In-Domain_50" / "maze" / "00001" / "first_frame.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    coordinator = Coordinator("tiny", (1,), device="cpu",
                              timeouts=Timeouts(start=120, load=240, join=60, collective=30, unit=240, control=30))
    try:
        good = coordinator.run_with_retries(units["00000"], retries=2)
        assert good.ok and len(good.attempts) == 1, good.error
        built, group = coordinator.built, coordinator.groups[0]
        bad = coordinator.run_with_retries(units["00001"], retries=2)
        assert not bad.ok and len(bad.attempts) == 1  # not retried
        assert isinstance(bad.error, InputError) or isinstance(getattr(bad.error, "__cause__", None), InputError), \
            repr(bad.error)
        assert "first_frame.png" in str(bad.error) and "ray status" not in str(bad.error)
        assert coordinator.built == built and coordinator.groups[0] is group and group.alive  # no teardown
        again = coordinator.run_with_retries(units["00000"], retries=0)
        assert again.ok and coordinator.built == built
    finally:
        coordinator.shutdown()
