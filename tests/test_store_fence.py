"""Compaction fenced by its lease, duplicated keys found and repaired, a damaged table named by `compact`: the
attacks made as a tester made them (real `cos-ray` processes, SIGSTOP/SIGCONT, files truncated and rows duplicated
with deltalake itself), checked against the tables as delta-rs alone reads them."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from store_processes import cli, delta, finish

pytestmark = pytest.mark.timeout(300)

LEASE_S = 2.0


def fake_store(out: Path, units: int, members: int = 2, steps: int = 4):
    from test_store import write_fake_unit

    from cos_ray.store.location import Store

    store = Store(out)
    for index in range(units):
        write_fake_unit(store, f"u{index:02d}", members=members, steps=steps)
    return store


def operations(out: Path, table: str) -> list[str]:
    """Each commit's operation in the table's log (delta-rs's commitInfo), oldest first."""
    found = []
    for entry in sorted((out / table / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            if line.strip() and "commitInfo" in json.loads(line):
                found.append(json.loads(line)["commitInfo"].get("operation"))
    return found


def commits(log: Path) -> set[str]:
    """The log's committed entries (a commit is written as a temporary file first, then renamed)."""
    return {name for name in os.listdir(log) if name.endswith(".json") and name[:20].isdigit()}


def keys(out: Path, table: str, columns) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in delta(out, table, list(columns))]


def test_a_compaction_paused_past_its_lease_commits_nothing_once_another_took_over(tmp_path):
    out = tmp_path / "results"
    fake_store(out, units=24)
    DeltaTable(str(out / "runs")).optimize.compact()  # only steps is left to compact: the paused compaction's work
    expected = sorted(keys(out, "steps", ("run_id", "step")))
    assert len(expected) == len(set(expected)) == 24 * 2 * 4
    claims, log = out / "_leases" / "_delta_log", out / "steps" / "_delta_log"
    claims_before, log_before = commits(claims), commits(log)

    paused = cli("compact", "--out", str(out), "--lease-s", str(LEASE_S))
    deadline = time.monotonic() + 120
    while not commits(claims) - claims_before:  # its claim of compact:steps is committed
        assert paused.poll() is None and time.monotonic() < deadline, finish(paused)[1]
        time.sleep(0.001)
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        while not commits(log) - log_before:  # on, a millisecond at a time, until its fence is committed: it
            assert paused.poll() is None and time.monotonic() < deadline  # holds the lease, its optimize is next
            os.kill(paused.pid, signal.SIGCONT)
            time.sleep(0.001)
            os.kill(paused.pid, signal.SIGSTOP)
        fenced = time.monotonic()
        assert operations(out, "steps")[-1] == "SET TBLPROPERTIES", operations(out, "steps")  # not yet OPTIMIZE
        time.sleep(max(0.0, fenced + LEASE_S + 1.0 - time.monotonic()))  # its lease has expired

        code, output = finish(cli("compact", "--out", str(out)))
        assert code == 0, output
        assert "steps: 24 file(s) -> 1 (192 rows)" in output
    except BaseException:
        paused.kill()
        raise
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    code, output = finish(paused)

    assert code == 1, output
    assert "lease compact:steps" in output and "committed nothing" in output, output
    assert "Traceback" not in output
    assert operations(out, "steps").count("OPTIMIZE") == 1
    for table, key in (("steps", ("run_id", "step")), ("runs", ("run_id",))):
        rows = keys(out, table, key)
        assert len(rows) == len(set(rows)), f"{table}: {len(rows)} rows for {len(set(rows))} keys"
    assert sorted(keys(out, "steps", ("run_id", "step"))) == expected
    assert len(keys(out, "runs", ("run_id",))) == 48


def test_a_held_lease_is_renewed_and_a_taken_over_one_is_lost(tmp_path):
    from cos_ray.store.lease import LostLease, lease

    store = fake_store(tmp_path, units=1)
    with lease(store, "compact:test", wait_s=0, ttl_s=0.9) as held:
        assert held
        time.sleep(2.0)  # more than twice its duration: renewals kept it
        held.check("holding")
        with lease(store, "compact:test", wait_s=0, ttl_s=0.9) as other:
            assert not other  # still held
    with lease(store, "compact:test", wait_s=0, ttl_s=0.9) as first:
        first.lost.set()  # as a renewal that found it taken over
        with pytest.raises(LostLease, match="compact:test expired or was taken over"):
            first.check("holding")
        first.lost.clear()
        with lease(store, "compact:test", wait_s=0, ttl_s=0.9) as second:
            assert not second


def test_duplicated_keys_are_damage_that_repair_reduces_to_one_row_each(tmp_path):
    from click.testing import CliRunner

    from cos_ray.cli import main

    out = tmp_path / "results"
    fake_store(out, units=6)
    steps = DeltaTable(str(out / "steps")).to_pyarrow_dataset().to_table()
    runs = DeltaTable(str(out / "runs")).to_pyarrow_dataset().to_table()
    reference_steps = sorted(keys(out, "steps", ("run_id", "step")))
    reference_rows = sorted(map(str, steps.to_pylist()))
    assert len(reference_steps) == 6 * 2 * 4
    write_deltalake(str(out / "steps"), steps.slice(0, 20), mode="append")  # 20 keys twice, as delta-rs appends
    twice = runs.filter(pc.equal(runs.column("run_id"), "u03-1"))
    twice = twice.set_column(twice.schema.get_field_index("score"), "score", pa.array([0.875], pa.float64()))
    write_deltalake(str(out / "runs"), twice, mode="append")  # one run twice, the newer copy with another score

    checked = CliRunner().invoke(main, ["store", "check", "--out", str(out)])
    assert checked.exit_code == 1, checked.output
    assert "table steps version" in checked.output and "20 key(s) (run_id, step) held by more than one row " \
        "(40 rows for them, 20 extra)" in checked.output
    assert "1 key(s) (run_id) held by more than one row (2 rows for them, 1 extra)" in checked.output

    repaired = CliRunner().invoke(main, ["store", "check", "--out", str(out), "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "steps: 20 duplicated key(s) now hold one row each - the copy in the data file added last" \
        in repaired.output and "20 extra row(s) removed" in repaired.output
    again = CliRunner().invoke(main, ["store", "check", "--out", str(out)])
    assert again.exit_code == 0 and "each key once" in again.output, again.output

    after = keys(out, "steps", ("run_id", "step"))
    assert len(after) == len(set(after)) and sorted(after) == reference_steps
    scores = {row["run_id"]: row["score"] for row in delta(out, "runs", ["run_id", "score"])}
    assert len(delta(out, "runs", ["run_id"])) == len(scores) == 12
    assert scores["u03-1"] == 0.875  # the copy in the data file added last
    assert sorted(map(str, delta(out, "steps"))) == reference_rows  # every row as it was, once


def test_compact_names_a_truncated_data_file_and_commits_no_data(tmp_path):
    out = tmp_path / "results"
    fake_store(out, units=4, members=1)
    actions = pa.table(DeltaTable(str(out / "steps")).get_add_actions(flatten=True)).to_pylist()
    damaged = next(a["path"] for a in actions if a["min.unit_id"] == "u02" == a["max.unit_id"])
    data = (out / "steps" / damaged).read_bytes()
    (out / "steps" / damaged).write_bytes(data[: len(data) // 2])
    files = sorted(DeltaTable(str(out / "steps")).file_uris())

    code, output = finish(cli("compact", "--out", str(out)))
    assert code == 1, output
    version = DeltaTable(str(out / "steps")).version()
    assert f"table steps version {version}: steps/{damaged} is unreadable" in output, output
    assert "lost: 4 row(s) of unit u02" in output and "cos-ray store check" in output
    assert "Traceback" not in output and len(output.strip().splitlines()) <= 2, output
    assert sorted(DeltaTable(str(out / "steps")).file_uris()) == files  # nothing compacted, nothing removed


def test_a_stale_holders_optimize_is_refused_by_the_newer_holders_fence(tmp_path):
    """The window SIGSTOP may hit last: the holder checked its lease and fence, then was paused before its commit."""
    from deltalake.exceptions import CommitFailedError

    from cos_ray.store.compact import _optimize_fenced, compact_store
    from cos_ray.store.fence import check_fence, raise_fence
    from cos_ray.store.lease import Lease, LostLease, _claim
    from cos_ray.store.tables import open_table

    store = fake_store(tmp_path, units=4)
    stale = Lease(store, "compact:steps", "paused-holder", ttl_s=0.3)  # no renewal thread: as if it were paused
    stale.token = _claim(store, stale.name, stale.holder, stale.ttl_s)
    assert stale
    raise_fence(store, "steps", stale)
    snapshot = open_table(store, "steps")  # the version it checked and is about to rewrite
    stale.check("compacting steps")
    check_fence(snapshot, "steps", stale)
    time.sleep(0.5)  # its lease expires

    newer = {result.table: result for result in compact_store(store, lease_s=30)}
    assert newer["steps"].files_before == 4 and newer["steps"].files_after == 1
    with pytest.raises(CommitFailedError, match="Metadata changed"):
        snapshot.optimize.compact()  # the newer holder's fence, committed after the snapshot, refuses the commit
    with pytest.raises(LostLease, match="committed nothing"):
        _optimize_fenced(store, "steps", stale)
    rows = keys(tmp_path, "steps", ("run_id", "step"))
    assert len(rows) == len(set(rows)) == 4 * 2 * 4
