"""Run a sweep's model units in this process, without Ray, writing the store exactly as `cos-ray submit` does (the
same row builder and writer): for measuring a small sweep on a machine too loaded to start a Ray cluster.

    python benchmarks/search_in_process.py SPEC --out STORE [--part K/P]

`--part K/P` runs every P-th unit from the K-th (start P processes for P cores; they share the store safely).
Finished units are skipped, so it resumes; the sweeps row is written by part 0 once at the start and when it ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--out", required=True)
    parser.add_argument("--part", default="0/1")
    args = parser.parse_args()
    part, parts = (int(value) for value in args.part.split("/"))

    import torch

    torch.set_num_threads(1)
    from cos_ray.cluster.outcome import Attempt, UnitOutcome
    from cos_ray.model.loader import load_pipeline
    from cos_ray.probes.program import run_program
    from cos_ray.provenance import sweep_provenance
    from cos_ray.spec.expand import expand, sweep_id
    from cos_ray.spec.load import load_spec
    from cos_ray.store.location import Store
    from cos_ray.store.rows import sweep_row
    from cos_ray.store.status import finished_units
    from cos_ray.store.write import write_sweep, write_unit
    from cos_ray.sweep.results import unit_results

    spec = load_spec(args.spec)
    units = expand(spec)
    store = Store(args.out)
    sweep = sweep_id(spec, units)
    started = datetime.now(timezone.utc)

    def record_sweep(status: str) -> None:
        done = len(finished_units(store) & {unit.unit_id for unit in units})
        write_sweep(store, sweep_row(sweep, spec.name, spec.source, spec.data, spec.model.name,
                                     [unit.unit_id for unit in units], status, done=done, started_at=started,
                                     finished_at=None if status == "running" else datetime.now(timezone.utc)))

    if part == 0:
        record_sweep("running")
    done = finished_units(store)
    mine = [unit for index, unit in enumerate(units) if index % parts == part and unit.unit_id not in done]
    model = load_pipeline(spec.model.name, device="cpu")
    shared = sweep_provenance(spec)
    clock = time.monotonic()
    for number, unit in enumerate(mine):
        unit = unit.resolved(1)
        loaded = unit.loaded()
        begun = datetime.now(timezone.utc)
        members = run_program(model, loaded.task, loaded.settings, list(loaded.seeds), loaded.program,
                              ensemble=loaded.ensemble, x0=loaded.x0)
        outcome = UnitOutcome(unit, members=members, attempts=[Attempt(1, begun, datetime.now(timezone.utc))])
        runs, steps, layers = unit_results(store, outcome, sweep, unit.settings.fps, shared)
        write_unit(store, unit.unit_id, runs, steps, layers)
        print(f"part {part}/{parts}: {number + 1}/{len(mine)} units, {time.monotonic() - clock:.0f} s", flush=True)
    if part == 0:
        record_sweep("done" if finished_units(store) >= {unit.unit_id for unit in units} else "running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
