"""Helpers of the store's concurrency and damage tests: real `cos-ray` processes on a local store, and the tables
read by delta-rs alone (the reference the tests compare against, independent of cos-ray's readers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

TRIVIAL_SPEC = """\
name: trivial
model: tiny
tasks: {generate: {family: maze, n: 4, seed: 3}}
seeds: [0, 1]
methods: [first_frame, ground_truth]
"""
TIMEOUT_S = 300


def write_spec(folder: Path) -> Path:
    """A sweep of trivial baselines (16 units, no model, no Ray): real units committed by a real driver."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "trivial.yaml"
    spec.write_text(TRIVIAL_SPEC)
    return spec


def expected_run_ids(spec: Path) -> set[str]:
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    return {f"{unit.unit_id}-{m}" for unit in expand(load_spec(spec)) for m in range(len(unit.seeds))}


def cli(*args: str, **popen) -> subprocess.Popen:
    """`python -m cos_ray.cli ARGS` in its own process (never a fork of this one: delta-rs does not survive fork)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen([sys.executable, "-m", "cos_ray.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=30)
        raise AssertionError(f"{process.args} did not finish within {TIMEOUT_S} s:\n{output}") from None
    return process.returncode, output


def submit(spec: Path, out: Path) -> subprocess.Popen:
    return cli("submit", str(spec), "--out", str(out), "--local", "--no-progress")


def delta(out: Path, table: str, columns=None) -> list[dict]:
    """The table's rows as delta-rs reads its newest version."""
    return DeltaTable(str(out / table)).to_pyarrow_dataset().to_table(columns=columns).to_pylist()


def comparable(out: Path, table: str) -> list[dict]:
    """Rows without the columns that legitimately differ between two submissions, in key order."""
    from cos_ray.store.schema import TABLE_SPECS

    spec = TABLE_SPECS[table]
    skip = {*spec.volatile, "spec_hash", "cos_ray_commit"}
    rows = [{k: v for k, v in row.items() if k not in skip} for row in delta(out, table)]
    return sorted(rows, key=lambda row: tuple(str(row[k]) for k in spec.key))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(spec, the store of one uninterrupted submission): what every concurrent or damaged store must end as."""
    folder = tmp_path_factory.mktemp("reference")
    spec = write_spec(folder)
    code, output = finish(submit(spec, folder / "results"))
    assert code == 0, output
    return spec, folder / "results"
