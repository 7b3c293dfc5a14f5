"""DuckDB over the Delta results store: mean score by method and per-step curves, compacted vs. uncompacted.

A synthetic store of 10^5 runs and 5·10^6 step rows (50 steps per run) is committed as a sweep commits it - per
unit, a merge into steps then a merge into runs (`cos_ray.store.write.write_unit`) - then compacted with
`cos_ray.store.compact.compact_store` (optimize + vacuum). Each query goes through `cos_ray.store.query.run_sql`, as
`cos-ray sql` does: open the tables' newest versions, register the views, run. Also timed: the damage check a resume
runs first (`cos_ray.store.damage.check_store`: every data file read). Target: < 1 s per query on the compacted store.

    python benchmarks/duckdb_store.py [--runs 100000] [--steps 50] [--runs-per-unit 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from cos_ray.store.compact import compact_store
from cos_ray.store.damage import check_store
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql
from cos_ray.store.write import write_unit

QUERIES = {
    "mean score by method": "SELECT method, avg(score) AS mean, count(*) AS runs FROM runs GROUP BY 1 ORDER BY 1",
    "per-step curves": (
        "SELECT r.method, s.step, avg(s.score) AS mean, avg(s.x0_std) AS x0_std "
        "FROM steps s JOIN runs r USING (run_id) GROUP BY 1, 2 ORDER BY 1, 2"
    ),
}
METHODS = ["baseline", "ensemble-stream", "ensemble-update", "noise"]


def synthetic(runs: int, steps: int, runs_per_unit: int, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    unit = np.arange(runs) // runs_per_unit
    unit_ids = np.char.add("u", np.char.zfill(unit.astype(str), 8))
    member = np.arange(runs) % runs_per_unit
    run_ids = np.char.add(np.char.add(unit_ids, "-"), member.astype(str))
    method = np.array(METHODS)[unit % len(METHODS)]
    score = np.clip(rng.normal(0.6, 0.2, runs), 0, 1)
    runs_table = pa.table({
        "sweep_id": pa.array(np.full(runs, "bench")), "unit_id": unit_ids, "run_id": run_ids,
        "member": member.astype(np.int32), "task_id": np.char.add("task-", (unit % 500).astype(str)),
        "task_family": np.array(["maze", "grid_path"])[unit % 2], "seed": member.astype(np.int64),
        "method": method, "params": pa.array(np.full(runs, '{"size": 3, "merge": "update"}')),
        "score": score, "status": pa.array(np.full(runs, "ok")), "duration_s": rng.uniform(1, 3, runs),
    })
    step = np.tile(np.arange(steps, dtype=np.int32), runs)
    progress = step / max(steps - 1, 1)
    steps_table = pa.table({
        "run_id": np.repeat(run_ids, steps), "unit_id": np.repeat(unit_ids, steps), "step": step,
        "timestep": 1000.0 * (1 - progress), "sigma": 1 - progress,
        "expert": np.where(progress < 0.125, "high", "low"),
        "x0_mean": rng.normal(0, 0.1, runs * steps), "x0_std": rng.uniform(0.5, 1.5, runs * steps),
        "x0_change": rng.uniform(0, 0.2, runs * steps),
        "score": np.repeat(score, steps) * progress,
    })
    return runs_table, steps_table


def write_units(store: Store, runs: pa.Table, steps: pa.Table, steps_per_run: int, runs_per_unit: int) -> int:
    """One steps commit and one runs commit per unit, as a sweep commits them; prints the pace as it goes."""
    units = runs.num_rows // runs_per_unit
    unit_ids = runs.column("unit_id")
    start_s = last = time.perf_counter()
    for index in range(units):
        start = index * runs_per_unit
        write_unit(store, unit_ids[start].as_py(), runs.slice(start, runs_per_unit),
                   steps.slice(start * steps_per_run, runs_per_unit * steps_per_run))
        if (index + 1) % 1000 == 0:
            now = time.perf_counter()
            print(f"  {index + 1:,} units committed, {(now - last) / 1000 * 1e3:.0f} ms per unit over the last "
                  f"1,000 ({now - start_s:.0f} s so far)", flush=True)
            last = now
    return units


def timed(store: Store, sql: str, repeats: int) -> tuple[float, pa.Table]:
    times, answer = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        answer = run_sql(store, sql)
        times.append(time.perf_counter() - start)
    return statistics.median(times), answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50, help="steps per run (steps rows = runs x steps)")
    parser.add_argument("--runs-per-unit", type=int, default=10, help="runs per unit: commits per table = runs / this")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", help="where to write the store (default: a temporary folder, removed after)")
    args = parser.parse_args()

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cos-ray-bench-"))
    store = Store(root / "store")
    try:
        runs, steps = synthetic(args.runs, args.steps, args.runs_per_unit)
        start = time.perf_counter()
        units = write_units(store, runs, steps, args.steps, args.runs_per_unit)
        write_s = time.perf_counter() - start
        print(f"store: {runs.num_rows:,} runs, {steps.num_rows:,} step rows, {units:,} units "
              f"({units:,} commits and files per table), committed in {write_s:.1f} s")
        start = time.perf_counter()
        assert not check_store(store, ["runs", "steps"])
        print(f"damage check (every data file read), uncompacted: {time.perf_counter() - start:.1f} s")

        results = {}
        for name, sql in QUERIES.items():
            results[name] = [timed(store, sql, args.repeats)]
        start = time.perf_counter()
        compacted = [c for c in compact_store(store) if c.table in ("runs", "steps")]
        compact_s = time.perf_counter() - start
        print(f"compaction: {compact_s:.1f} s -> {', '.join(f'{c.table} {c.files_after}' for c in compacted)} "
              f"file(s)")
        start = time.perf_counter()
        assert not check_store(store, ["runs", "steps"])
        print(f"damage check, compacted: {time.perf_counter() - start:.1f} s")
        for name, sql in QUERIES.items():
            results[name].append(timed(store, sql, args.repeats))

        print(f"\nmedian of {args.repeats}, each a fresh connection (open the tables, register the views, query):\n")
        print("| query | uncompacted | compacted | ratio |")
        print("|---|---|---|---|")
        for name, ((slow, slow_answer), (fast, fast_answer)) in results.items():
            assert slow_answer.equals(fast_answer) or slow_answer.num_rows == fast_answer.num_rows, name
            print(f"| {name} | {slow:.3f} s | {fast:.3f} s | {slow / fast:.1f}x |")
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
