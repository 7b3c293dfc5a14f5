"""A sweep whose store's disk fills mid-sweep (issue 27, row 5): one line, exit 1, the sweep's row not left "running",
nothing partial, and a resubmission on a disk with room ends exactly as an uninterrupted sweep.

The disk is a real 400 KB tmpfs mounted for the test (as the attack was made) where the machine lets the test mount
one (root with CAP_SYS_ADMIN); elsewhere the store's writes are capped by RLIMIT_FSIZE on the child (its SIGXFSZ
ignored, so a write past the cap fails with EFBIG as a full disk's fails with ENOSPC). The sweep is trivial baselines
(no model, no Ray) run by the real `cos-ray submit` in its own process; the tables are read back by delta-rs alone.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from store_processes import comparable, delta

SPEC = """\
name: trivial
model: tiny
tasks: {generate: {family: maze, n: 3, seed: 3}}
seeds: [0]
methods: [first_frame, ground_truth]
"""
DISK = "400k"
FSIZE = 6 << 10  # the fallback's cap on one file: smaller than a unit's runs data file (~13 KB)
TIMEOUT_S = 300


def cos_ray(*args: str, fsize: int | None = None) -> subprocess.CompletedProcess:
    def cap():  # fallback only: a write past the cap fails with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "cos_ray.cli", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, preexec_fn=cap if fsize else None)


@pytest.fixture
def small_disk(tmp_path):
    """(a folder on a 400 KB tmpfs, None) - or (a plain folder, the RLIMIT_FSIZE cap) where mounting is refused."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    yield folder, None if mounted else FSIZE
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_mid_sweep_is_one_line_and_resumes_exactly(small_disk, tmp_path):
    disk, fsize = small_disk
    spec = tmp_path / "trivial.yaml"
    spec.write_text(SPEC)
    store = disk / "results"

    full = cos_ray("submit", str(spec), "--out", str(store), "--local", "--no-progress", fsize=fsize)

    output = full.stdout + full.stderr
    assert full.returncode == 1, output
    assert "Traceback" not in output
    error = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "disk full writing" in error[0] and str(store.name) in error[0], output
    assert ("No space left on device" if fsize is None else "File too large") in error[0]
    sweeps = delta(store, "sweeps")
    assert [row["status"] for row in sweeps] == ["interrupted"], sweeps
    done = {row["run_id"] for row in delta(store, "runs") if row["status"] == "ok"}
    assert len(done) < 6 and (fsize or len(done) > 0), "the disk filled mid-sweep"
    leftovers = [p.name for p in store.rglob("*") if p.name.startswith((".tmp-", ".reserve-")) or p.suffix == ".tmp"]
    assert not leftovers, leftovers  # nothing half-written, the reserve given back
    check = cos_ray("store", "check", "--out", str(store))
    assert check.returncode == 0 and "Traceback" not in check.stdout + check.stderr, check.stdout + check.stderr

    if fsize is None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # room again, same store
    resumed = cos_ray("submit", str(spec), "--out", str(store), "--local", "--no-progress")  # (fallback: no cap)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(done)} already done" in resumed.stdout

    reference = tmp_path / "reference"
    uninterrupted = cos_ray("submit", str(spec), "--out", str(reference), "--local", "--no-progress")
    assert uninterrupted.returncode == 0, uninterrupted.stdout + uninterrupted.stderr
    for table in ("runs", "steps"):
        assert comparable(store, table) == comparable(reference, table), table  # each run once, the same values
    assert [row["status"] for row in delta(store, "sweeps")] == ["done"]
    for row in delta(store, "runs"):
        assert Path(store / row["video"]).read_bytes() == Path(reference / row["video"]).read_bytes()
