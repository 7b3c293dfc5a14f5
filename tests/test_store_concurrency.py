"""The store under real concurrent processes: two drivers of one spec, compactions racing each other and a sweep,
SQL queries during compaction - no row lost or doubled, every query answered."""

from __future__ import annotations

import time

import pytest

from store_processes import cli, comparable, delta, expected_run_ids, finish, reference, submit  # noqa: F401 (reference: a fixture)

pytestmark = pytest.mark.timeout(600)


def test_two_submits_of_one_spec_at_once_commit_every_run_once(reference, tmp_path):
    spec, uninterrupted = reference
    out = tmp_path / "results"
    first, second = submit(spec, out), submit(spec, out)
    (code_1, output_1), (code_2, output_2) = finish(first), finish(second)
    assert (code_1, code_2) == (0, 0), output_1 + output_2
    runs = delta(out, "runs", ["run_id", "status"])
    assert sorted(row["run_id"] for row in runs) == sorted(expected_run_ids(spec))  # each exactly once
    assert {row["status"] for row in runs} == {"ok"}
    sweeps = delta(out, "sweeps", ["sweep_id", "status", "done"])
    assert len(sweeps) == 1 and sweeps[0]["status"] == "done" and sweeps[0]["done"] == 16
    assert comparable(out, "runs") == comparable(uninterrupted, "runs")
    assert comparable(out, "steps") == comparable(uninterrupted, "steps")


def test_compactions_at_once_and_during_a_sweep_lose_and_double_nothing(reference, tmp_path):
    from test_store import write_fake_unit

    from cos_ray.store.location import Store

    spec, _ = reference
    out = tmp_path / "results"
    store = Store(out)
    for index in range(12):
        write_fake_unit(store, f"pre{index:02d}", members=2, steps=3)
    sweep = submit(spec, out)
    compactions = 0
    while sweep.poll() is None or compactions < 2:
        pair = [cli("compact", "--out", str(out)), cli("compact", "--out", str(out))]  # two at once
        for process in pair:
            code, output = finish(process)
            assert code == 0, output
        compactions += 1
    code, output = finish(sweep)
    assert code == 0, output
    runs = [row["run_id"] for row in delta(out, "runs", ["run_id"])]
    assert len(runs) == len(set(runs)) == 24 + 16
    assert set(runs) == expected_run_ids(spec) | {f"pre{i:02d}-{m}" for i in range(12) for m in (0, 1)}
    steps = [(row["run_id"], row["step"]) for row in delta(out, "steps", ["run_id", "step"])]
    assert len(steps) == len(set(steps)) == 24 * 3


def test_sql_during_compactions_always_answers(tmp_path):
    from test_store import write_fake_unit

    from cos_ray.store.location import Store

    out = tmp_path / "results"
    store = Store(out)
    for index in range(40):
        write_fake_unit(store, f"u{index:02d}", members=1 + index % 2)
    compacting = cli("compact", "--out", str(out))
    answers = []
    deadline = time.monotonic() + 120
    while compacting.poll() is None or len(answers) < 3:
        code, output = finish(cli("sql", "select count(*) as n, count(distinct run_id) as d from steps", "--out",
                                  str(out), "--format", "csv"))
        assert code == 0, output
        answers.append(output.splitlines()[-1])
        assert time.monotonic() < deadline
    assert finish(compacting)[0] == 0
    assert set(answers) == {"180,60"}  # 60 runs x 3 steps, every time
