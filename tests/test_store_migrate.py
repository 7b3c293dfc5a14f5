"""A store in the pre-Delta format (per-unit Parquet parts, compacted files with supersede footers) is refused with
the command that converts it, and `cos-ray store migrate` converts it once, every live row kept exactly once."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from deltalake import DeltaTable

from cos_ray.cli import main


def legacy_runs(units: list[str], score: float) -> pa.Table:
    return pa.table({"unit_id": [u for u in units for _ in (0, 1)],
                     "run_id": [f"{u}-{m}" for u in units for m in (0, 1)],
                     "status": ["ok"] * 2 * len(units), "score": [score] * 2 * len(units)})


def write_legacy_store(root) -> None:
    """What the Parquet store left after: units a..d compacted twice (the first compaction superseded by the
    second, its file still there as after a crash before deletion), then unit b retried and e added as parts."""
    runs = root / "runs"
    runs.mkdir(parents=True)
    pq.write_table(legacy_runs(["a", "b", "c"], 0.1), runs / "compact-aa.parquet")
    second = legacy_runs(["a", "b", "c", "d"], 0.2).replace_schema_metadata(
        {b"cos_ray.supersedes": json.dumps(["compact-aa.parquet"]).encode()})
    pq.write_table(second, runs / "compact-bb.parquet")
    pq.write_table(legacy_runs(["b"], 0.9), runs / "part-b.parquet")
    pq.write_table(legacy_runs(["e"], 0.5).append_column("novelty", pa.array([1, 2])), runs / "part-e.parquet")
    steps = root / "steps"
    steps.mkdir()
    pq.write_table(pa.table({"run_id": ["e-0", "e-0"], "unit_id": ["e", "e"], "step": pa.array([0, 1], pa.int32())}),
                   steps / "part-e.parquet")


def test_a_legacy_store_is_named_then_converted_once(tmp_path):
    root = tmp_path / "results"
    write_legacy_store(root)
    refused = CliRunner().invoke(main, ["sql", "select count(*) from runs", "--out", str(root)])
    assert refused.exit_code == 2 and "cos-ray store migrate" in refused.output

    result = CliRunner().invoke(main, ["store", "migrate", "--out", str(root)])
    assert result.exit_code == 0, result.output
    runs = DeltaTable(str(root / "runs")).to_pyarrow_dataset().to_table().to_pylist()
    scores = {row["run_id"]: row["score"] for row in runs}
    assert len(runs) == len(scores) == 10  # a..e, two members each, once
    assert {k: v for k, v in scores.items() if k[0] in "acd"} == {f"{u}-{m}": 0.2 for u in "acd" for m in (0, 1)}
    assert scores["b-0"] == scores["b-1"] == 0.9 and scores["e-0"] == 0.5  # the small files won
    assert {row["run_id"]: row["novelty"] for row in runs if row["unit_id"] == "e"} == {"e-0": 1, "e-1": 2}
    assert not list((root / "runs").glob("compact-*.parquet")) and (root / "_legacy" / "runs").is_dir()

    counted = CliRunner().invoke(main, ["sql", "select count(*) n, count(distinct run_id) d from steps", "--out",
                                        str(root), "--format", "csv"])
    assert counted.exit_code == 0 and counted.output.splitlines() == ['"n","d"', "2,1"]
    again = CliRunner().invoke(main, ["store", "migrate", "--out", str(root)])
    assert again.exit_code == 0 and "nothing to migrate" in again.output
    assert DeltaTable(str(root / "runs")).to_pyarrow_dataset().count_rows() == 10
