"""`cos-ray generate --workers N`: one task's seeds (an ensemble's members) on N Ray workers, written like `generate`.

The driver imports neither torch nor diffusers: the workers load the model, run, and return numpy members; the run
record (versions included) is made by a worker. Ray: `$RAY_ADDRESS` if set, else a fresh local cluster
(`cos_ray.cluster.connect`, as every driver).
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.cluster.waits import Timeouts
from cos_ray.errors import UsageError
from cos_ray.spec.layout import even_layout


def generate_on_ray(model: str, task, settings, seed: int, out: Path, *, workers: int, ensemble=None, x0=None,
                    device: str | None = None, gpus_per_worker: float = 0, timeouts: Timeouts = Timeouts(),
                    parallel: dict | None = None) -> list[Path]:
    """Run seed `seed` (or the ensemble's members seed..seed+N-1) spread evenly over `workers` workers (replicas of
    `parallel.ulysses` actors each with a parallel layout, twice that with `parallel.cfg`)."""
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.videos import write_members
    from cos_ray.media import write_json

    seeds = ensemble.member_seeds(seed) if ensemble is not None else [seed]
    if workers < 1 or workers > len(seeds):
        raise UsageError(f"--workers: expected 1..{len(seeds)} (one seed per worker at most) for {len(seeds)} "
                         f"seed(s), got {workers}; --ensemble N sets the number of seeds")
    layout = even_layout(len(seeds), workers)
    from cos_ray.cluster.connect import connect

    connect()
    with Coordinator(model, layout, device=device, gpus_per_worker=gpus_per_worker, timeouts=timeouts,
                     parallel=parallel) as coordinator:
        members = coordinator.run_unit(task, settings, seeds, ensemble=ensemble, x0=x0, layout=layout)
        group = coordinator.groups[0]
        [record] = group.execute(_run_record, task, settings, seeds, ensemble, members=1, timeout=timeouts.control)
        record["workers"] = {"layout": list(layout), "info": [info.as_dict() for info in group.info]}
        if parallel:
            record["workers"]["parallel"] = dict(parallel)
    videos = write_members(members, out, settings.fps)
    write_json(out / "settings.json", record)
    return videos


def _run_record(worker, task, settings, seeds, ensemble) -> dict:
    """On the first worker: the run record (versions are the worker's: it ran the model)."""
    return worker.run_record(task, settings, seeds, ensemble)
