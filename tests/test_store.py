"""The Delta store: one commit per unit and table, resume status, schema evolution, compaction, concurrent readers."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable

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


def delta_rows(path, columns=None) -> pa.Table:
    """A table read by delta-rs alone (the reference: not through cos-ray's views)."""
    return DeltaTable(str(path)).to_pyarrow_dataset().to_table(columns=columns)


def test_a_unit_is_one_commit_per_table_and_no_temporary_remains(tmp_path):
    store = Store(tmp_path / "results")
    write_fake_unit(store, "abc123", members=3)
    for name in ("runs", "steps"):
        folder = tmp_path / "results" / name
        assert DeltaTable(str(folder)).version() == 1  # created, then the unit's one commit
        assert not [p for p in folder.rglob("*") if p.name.startswith(".tmp")]
    runs = delta_rows(tmp_path / "results" / "runs")
    assert runs.schema.names[: len(RUNS)] == RUNS.names
    assert sorted(runs.column("run_id").to_pylist()) == ["abc123-0", "abc123-1", "abc123-2"]
    assert sorted(runs.column("seed").to_pylist()) == [0, 1, 2]
    assert table(store, "select count(*) n from steps") == [{"n": 9}]
    assert delta_rows(tmp_path / "results" / "steps").num_rows == 9


def test_a_unit_committed_twice_keeps_one_row_per_key(tmp_path):
    store = Store(tmp_path)
    write_fake_unit(store, "u1", members=2, score=0.25)
    assert not write_unit(store, "u1", [run_row(FakeUnit("u1", (0, 1)), m, "other", score=0.75) for m in (0, 1)])
    runs = delta_rows(tmp_path / "runs", ["run_id", "score", "sweep_id"]).to_pylist()
    assert sorted(r["run_id"] for r in runs) == ["u1-0", "u1-1"]
    assert {(r["score"], r["sweep_id"]) for r in runs} == {(0.25, "sweep")}  # the first finished attempt stays
    assert delta_rows(tmp_path / "steps").num_rows == 6


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
        assert len(DeltaTable(str(tmp_path / name)).file_uris()) == 1
    after = snapshot(store)
    assert after[0].equals(before[0]) and after[1].equals(before[1])

    # a finished unit committed again after compaction keeps its rows; a second compaction leaves one file again
    write_fake_unit(store, "u001", members=2, score=0.99)
    write_fake_unit(store, "u100", members=1)
    expected = snapshot(store)
    assert table(store, "select count(*) n from runs where unit_id = 'u001'") == [{"n": 2}]
    assert table(store, "select distinct score from runs where unit_id = 'u001'") == [{"score": 1 / 30}]
    compact_store(store)
    assert all(len(DeltaTable(str(tmp_path / name)).file_uris()) == 1 for name in ("runs", "steps"))
    after = snapshot(store)
    assert after[0].equals(expected[0]) and after[1].equals(expected[1])


def test_a_reader_during_compaction_never_double_counts(tmp_path):
    """While compactions commit (new files added, old ones marked removed), each query counts every row once."""
    store = Store(tmp_path)
    for index in range(10):
        write_fake_unit(store, f"u{index}")
    compact_store(store)
    for index in range(10, 15):
        write_fake_unit(store, f"u{index}")
    seen, done = [], threading.Event()

    def compact_twice():
        try:
            compact_store(store)
            write_fake_unit(store, "u10")  # already finished: changes nothing
            compact_store(store)
        finally:
            done.set()

    thread = threading.Thread(target=compact_twice)
    thread.start()
    while not done.is_set() or len(seen) < 3:
        seen.append(table(store, "select count(*) n, count(distinct run_id) d from runs")[0])
    thread.join(30)
    assert seen and all(row == {"n": 15, "d": 15} for row in seen)
    assert len(DeltaTable(str(tmp_path / "runs")).file_uris()) == 1


def test_concurrent_reader_never_fails_while_units_are_written_and_compacted(tmp_path):
    store = Store(tmp_path)
    units, members = 60, 3
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
            if index in (20, 40):
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


def test_a_store_named_by_uri_reads_and_writes_the_same_tables(tmp_path):
    """Remote stores are URIs handed to delta-rs (s3://, gs://, az://); a file:// URI takes that same path."""
    local = Store(tmp_path)
    for index in range(4):
        write_fake_unit(local, f"u{index}")
    compact_store(local)
    write_fake_unit(local, "u9", members=2)
    remote = Store(f"file://{tmp_path}")
    assert remote.table_uri("runs") == f"file://{tmp_path}/runs"
    assert table(remote, "select count(*) n from runs") == [{"n": 6}]
    assert run_sql(remote, "select * from runs order by run_id").equals(
        run_sql(local, "select * from runs order by run_id"))
    write_fake_unit(remote, "u10")
    assert finished_units(local) == {"u0", "u1", "u2", "u3", "u9", "u10"}


def test_bad_keys_are_refused(tmp_path):
    with pytest.raises(ValueError):
        write_unit(Store(tmp_path), "../escape", [])
    with pytest.raises(ValueError):
        Store(tmp_path).table_uri("nosuch")
    assert pa.types.is_timestamp(RUNS.field("started_at").type)


def test_a_new_attempt_replaces_the_rows_of_an_earlier_one(tmp_path):
    from cos_ray.store.write import commit_rows

    store = Store(tmp_path)
    write_fake_unit(store, "u0")
    records = [{"step": s, "timestep": 1.0, "sigma": 1.0, "expert": "high"} for s in range(3)]
    commit_rows(store, "steps", step_rows("u1-0", "u1", records), scope="u1")  # killed before its runs commit
    write_unit(store, "u1", failed_rows(FakeUnit("u1"), "sweep", "boom"))  # the next attempt failed: no steps
    assert sorted(delta_rows(tmp_path / "steps", ["unit_id"]).column("unit_id").to_pylist()) == ["u0"] * 3
    assert failed_units(store) == {"u1"}
