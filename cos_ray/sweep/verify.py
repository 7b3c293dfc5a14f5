"""`cos-ray verify SWEEP`: rerun a sample of a sweep's finished units and report every stored row that differs.

The units are rebuilt from the spec the sweep ran (its `source` in the sweeps table, or `--spec`), rerun with the
same worker layout into a scratch store, and compared row by row with what the store holds - every column except
the ones that legitimately differ between two runs (`VOLATILE`: times, durations, worker names). On the same hardware
and software nothing may differ; a difference means the stored rows were altered, or the run is not reproducible.
"""

from __future__ import annotations

import math
import random
import tempfile
from dataclasses import dataclass

from cos_ray.errors import UsageError

ROW_KEYS = {"runs": ("run_id",), "steps": ("run_id", "step"), "layers": ("run_id", "kind", "layer", "step")}


@dataclass(frozen=True)
class Difference:
    """One value that the rerun does not reproduce (`stored` or `rerun` is `<missing>` for a whole row)."""

    unit_id: str
    table: str
    key: tuple
    column: str
    stored: object
    rerun: object

    def __str__(self) -> str:
        return (f"unit {self.unit_id} {self.table} {'/'.join(map(str, self.key))} {self.column}: "
                f"stored {self.stored!r}, rerun {self.rerun!r}")


def find_sweep(store, sweep: str) -> dict:
    """The sweeps row of `sweep` (an id, or a name: its latest submission)."""
    from cos_ray.store.query import run_sql

    rows = run_sql(store, "select * from sweeps order by started_at desc").to_pylist() if store.exists() else []
    for row in rows:
        if sweep in (row["sweep_id"], row["name"]):
            return row
    known = ", ".join(sorted({f"{row['name']} ({row['sweep_id']})" for row in rows})) or "none"
    raise UsageError(f"sweep {sweep!r}: not in store {store.uri} (sweeps there: {known})")


def choose_units(store, sweep_row: dict, sample: int, unit_ids=(), seed: int = 0) -> list[str]:
    """The finished units to rerun: those named, else `sample` drawn (reproducibly) from the sweep's finished ones."""
    from cos_ray.store.status import finished_units

    finished = sorted(finished_units(store) & set(sweep_row["unit_ids"]))
    if unit_ids:
        missing = [uid for uid in unit_ids if uid not in finished]
        if missing:
            raise UsageError(f"--unit: {', '.join(missing)} not among the finished units of sweep "
                             f"{sweep_row['sweep_id']}")
        return list(unit_ids)
    if sample < 1:
        raise UsageError(f"--sample: expected >= 1, got {sample}")
    if not finished:
        raise UsageError(f"sweep {sweep_row['sweep_id']} has no finished unit to verify")
    return sorted(random.Random(seed).sample(finished, min(sample, len(finished))))


def verify_sweep(store, sweep: str, *, sample: int = 3, unit_ids=(), spec_path: str | None = None, seed: int = 0,
                 progress: bool = False) -> tuple[list[str], list[Difference]]:
    """Rerun the chosen units; (units rerun, differences)."""
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.store.location import Store
    from cos_ray.sweep.runner import SweepReport, run_units

    row = find_sweep(store, sweep)
    chosen = choose_units(store, row, sample, unit_ids, seed)
    spec = load_spec(spec_path or row["source"])
    units = {unit.unit_id: unit for unit in expand(spec)}
    absent = [uid for uid in chosen if uid not in units]
    if absent:
        raise UsageError(f"units {', '.join(absent)} are not units of spec {spec.source} as it reads now (the spec, its "
                         "tasks or cos-ray's version changed); pass --spec with the spec the sweep ran")
    with tempfile.TemporaryDirectory(prefix="cos-ray-verify-") as scratch:
        rerun = Store(scratch)
        report = SweepReport(row["sweep_id"], rerun.uri, len(chosen), 0)
        run_units(spec, rerun, [units[uid] for uid in chosen], report, show=progress)
        if report.failed:
            from cos_ray.store.query import run_sql

            errors = run_sql(rerun, "select distinct unit_id, error from runs where status = 'failed'").to_pylist()
            raise UsageError("the rerun failed: " + "; ".join(f"unit {e['unit_id']}: {e['error']}" for e in errors))
        return chosen, compare_units(store, rerun, chosen)


def compare_units(stored, rerun, unit_ids) -> list[Difference]:
    """Every value of the units' rows in `stored` that `rerun` does not hold, table by table."""
    from cos_ray.store.query import run_sql
    from cos_ray.store.schema import VOLATILE

    quoted = ", ".join(f"'{uid}'" for uid in unit_ids)
    differences = []
    for table, key in ROW_KEYS.items():
        def rows(store):
            if not store.has_table(table):
                return {}
            result = run_sql(store, f"select * from {table} where unit_id in ({quoted})").to_pylist()
            return {tuple(row[k] for k in key): row for row in result}

        before, after = rows(stored), rows(rerun)
        for row_key in sorted(set(before) | set(after), key=repr):
            old, new = before.get(row_key), after.get(row_key)
            unit_id = (old or new)["unit_id"]
            if old is None or new is None:
                differences.append(Difference(unit_id, table, row_key, "*", "<missing>" if old is None else "row",
                                              "<missing>" if new is None else "row"))
                continue
            for column in sorted(set(old) | set(new)):
                if column not in VOLATILE[table] and not _same(old.get(column), new.get(column)):
                    differences.append(Difference(unit_id, table, row_key, column, old.get(column), new.get(column)))
    return differences


def _same(a, b) -> bool:
    """Equal, NaN included (a NaN stored and rerun is reproduced)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b
