"""The Parquet store: atomic per-unit files, resume status, union by name, compaction, concurrent readers."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cos_ray.store.compact import compact_store
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql
from cos_ray.store.rows import failed_rows, run_row, step_rows, sweep_row
from cos_ray.store.schema import RUNS, STEPS, SWEEPS
from cos_ray.store.status import failed_units, finished_units
from cos_ray.store.write import write_media, write_sweep, write_unit


class FakeTask:
    task_id, family = "In-Domain_50/maze/00000", "maze"


class FakeUnit:
    """What the row builders read from a unit (cos_ray.spec.unit.Unit has these attributes)."""

    def __init__(self, uid, seeds=(0,), method="baseline"):
        self.unit_id, self.seeds, self.method, self.task = uid, tuple(seeds), method, FakeTask()
        self.params = {"size": len(seeds)} if method == "ensemble" else {}
        self.model, self.settings = "tiny", {"steps": 3}


def write_fake_unit(store, uid, members=1, score=0.5, steps=3):
    unit = FakeUnit(uid, range(members), "ensemble" if members > 1 else "baseline")
    runs = [run_row(unit, m, "sweep", score=score, duration_s=1.0, worker="w0", device="cpu") for m in range(members)]
    records = [{"step": s, "timestep": 1000.0 - s, "sigma": 1.0 - s / steps, "expert": "high", "x0_mean": 0.1}
               for s in range(steps)]
    step_table = [row for m in range(members) for row in step_rows(f"{uid}-{m}", uid, records, {s: s / steps for s in range(steps)})]
    write_unit(store, uid, runs, step_table)
    return unit


def table(store, sql):
    return run_sql(store, sql).to_pylist()


def test_unit_files_are_named_by_id_and_no_temporary_remains(tmp_path):
    store = Store(tmp_path / "results")
    write_fake_unit(store, "abc123", members=3)
    assert sorted(p.name for p in (tmp_path / "results" / "runs").iterdir()) == ["part-abc123.parquet"]
    assert sorted(p.name for p in (tmp_path / "results" / "steps").iterdir()) == ["part-abc123.parquet"]
    runs = pq.read_table(tmp_path / "results" / "runs" / "part-abc123.parquet")
    assert runs.schema.names[: len(RUNS)] == RUNS.names
    assert runs.column("run_id").to_pylist() == ["abc123-0", "abc123-1", "abc123-2"]
    assert runs.column("seed").to_pylist() == [0, 1, 2]
    assert table(store, "select count(*) n from steps") == [{"n": 9}]


def test_empty_store_has_every_core_column():
    store = Store("/nonexistent/store")
    assert store.is_empty()
    for name, schema in (("runs", RUNS), ("steps", STEPS), ("sweeps", SWEEPS)):
        assert run_sql(store, f"select * from {name}").schema.names == schema.names


def test_failed_units_are_retried_and_replaced(tmp_path):
    store = Store(tmp_path)
    write_fake_unit(store, "u1")
    write_unit(store, "u2", failed_rows(FakeUnit("u2", (0, 1, 2), "ensemble"), "sweep", RuntimeError("OOM")))
    assert finished_units(store) == {"u1"} and failed_units(store) == {"u2"}
    assert table(store, "select error from runs where unit_id = 'u2' limit 1") == [{"error": "RuntimeError: OOM"}]
    write_fake_unit(store, "u2", members=3)  # the retry replaces the failed file
    assert finished_units(store) == {"u1", "u2"} and failed_units(store) == set()
    assert table(store, "select count(*) n from runs where unit_id = 'u2'") == [{"n": 3}]


def test_columns_added_later_do_not_vanish(tmp_path):
    store = Store(tmp_path)
    write_unit(store, "a-old", [{"unit_id": "a-old", "run_id": "a-old-0", "status": "ok"}])
    write_unit(store, "b-new", [{"unit_id": "b-new", "run_id": "b-new-0", "status": "ok", "novelty": 7}])
    rows = table(store, "select unit_id, novelty, params from runs order by 1")
    assert rows == [{"unit_id": "a-old", "novelty": None, "params": None},
                    {"unit_id": "b-new", "novelty": 7, "params": None}]


def test_params_are_json_and_sweeps_rows_rewrite(tmp_path):
    store = Store(tmp_path)
    write_fake_unit(store, "e1", members=2)
    assert table(store, "select distinct json_extract(params, '$.size')::int s from runs") == [{"s": 2}]
    row = sweep_row("sw", "smoke", "jobs/smoke.yaml", {"model": "tiny"}, "tiny", ["e1"], "running")
    write_sweep(store, row)
    write_sweep(store, {**row, "status": "done", "done": 1})
    assert table(store, "select status, done, unit_ids from sweeps") == [{"status": "done", "done": 1,
                                                                          "unit_ids": ["e1"]}]


def test_media_is_written_atomically_under_the_unit(tmp_path):
    store = Store(tmp_path)
    relative = write_media(store, store.media_path("u1", 0, "video.mp4"), b"\x00" * 10)
    assert relative == "media/u1/member-0/video.mp4"
    assert (tmp_path / relative).read_bytes() == b"\x00" * 10
    assert [p.name for p in (tmp_path / "media" / "u1" / "member-0").iterdir()] == ["video.mp4"]


def snapshot(store):
    runs = run_sql(store, "select * from runs order by run_id")
    steps = run_sql(store, "select * from steps order by run_id, step")
    return runs, steps


def test_compaction_preserves_rows_and_leaves_one_file_per_table(tmp_path):
    store = Store(tmp_path)
    for index in range(30):
        write_fake_unit(store, f"u{index:03d}", members=1 + index % 3, score=index / 30)
    write_sweep(store, sweep_row("sw", "s", "s.yaml", {}, "tiny", [], "done"))
    before = snapshot(store)
    results = {r.table: r for r in compact_store(store)}
    assert results["runs"].files_before == 30 and results["runs"].rows == before[0].num_rows
    for name in ("runs", "steps"):
        files = [p.name for p in (tmp_path / name).iterdir()]
        assert len(files) == 1 and files[0].startswith("compact-")
    after = snapshot(store)
    assert after[0].equals(before[0]) and after[1].equals(before[1])

    # a retry after compaction wins over the compacted rows; a second compaction supersedes the first
    write_fake_unit(store, "u001", members=2, score=0.99)
    write_fake_unit(store, "u100", members=1)
    expected = snapshot(store)
    assert table(store, "select count(*) n from runs where unit_id = 'u001'") == [{"n": 2}]
    compact_store(store)
    assert all(len(list((tmp_path / name).iterdir())) == 1 for name in ("runs", "steps"))
    after = snapshot(store)
    assert after[0].equals(expected[0]) and after[1].equals(expected[1])


def test_a_reader_during_compaction_never_double_counts(tmp_path):
    """Between publishing the compacted file and deleting the small files both exist: each row still counts once."""
    from cos_ray.store import compact as compact_module

    store = Store(tmp_path)
    for index in range(10):
        write_fake_unit(store, f"u{index}")
    compact_store(store)
    for index in range(10, 15):
        write_fake_unit(store, f"u{index}")
    seen = []
    original = compact_module.write_parquet

    def publish_then_look(*args, **kwargs):
        path = original(*args, **kwargs)
        seen.append(table(store, "select count(*) n, count(distinct run_id) d from runs")[0])
        return path

    compact_module.write_parquet = publish_then_look
    try:
        compact_store(store, keys={"runs": {"u10", "u11"}})
    finally:
        compact_module.write_parquet = original
    assert seen and all(row == {"n": 15, "d": 15} for row in seen)
    assert len(store.list_table("runs").parts) == 3  # the three unchosen units keep their small files


def test_concurrent_reader_never_fails_while_units_are_written_and_compacted(tmp_path):
    store = Store(tmp_path)
    units, members = 120, 3
    errors, counts, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                rows = table(store, "select count(*) n, count(distinct unit_id) u from runs")[0]
                counts.append(rows)
            except Exception as err:  # noqa: BLE001 - the test is that nothing is raised
                errors.append(err)

    def writer():
        for index in range(units):
            write_fake_unit(store, f"w{index:04d}", members=members)
            if index in (40, 80):
                compact_store(store)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        writer()
    finally:
        time.sleep(0.05)
        stop.set()
        thread.join(30)
    assert not errors, errors[:3]
    assert len(counts) > 5
    assert all(row["n"] == members * row["u"] for row in counts)  # whole units only, none counted twice
    assert [row["u"] for row in counts] == sorted(row["u"] for row in counts)  # never goes back
    assert table(store, "select count(*) n from runs") == [{"n": units * members}]


def test_non_local_filesystems_read_through_pyarrow_datasets(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    import pyarrow.fs as pafs

    local = Store(tmp_path)
    for index in range(4):
        write_fake_unit(local, f"u{index}")
    compact_store(local)
    write_fake_unit(local, "u9", members=2)
    remote = Store(tmp_path)
    remote.fs = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("file")))  # not LocalFileSystem
    assert not remote.is_local
    assert table(remote, "select count(*) n from runs") == [{"n": 6}]
    assert run_sql(remote, "select * from runs order by run_id").equals(
        run_sql(local, "select * from runs order by run_id"))
    write_fake_unit(remote, "u10")  # an object-store style write: one put, no temporary name
    assert finished_units(remote) == {"u0", "u1", "u2", "u3", "u9", "u10"}


def test_bad_keys_are_refused(tmp_path):
    with pytest.raises(ValueError):
        Store(tmp_path).part_path("runs", "../escape")
    assert pa.types.is_timestamp(RUNS.field("started_at").type)
