"""`cos-ray generate --workers N`: one task's seeds (an ensemble's members) on N Ray workers, written like `generate`.

The driver imports neither torch nor diffusers: the workers load the model, run, and return numpy members; the run
record (versions included) is made by a worker. Ray: `$RAY_ADDRESS` if set, else the cluster `ray.init()` finds or
starts on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from cos_ray.cluster import waits
from cos_ray.cluster.layout import even_layout
from cos_ray.cluster.waits import Timeouts
from cos_ray.errors import UsageError


def generate_on_ray(model: str, task, settings, seed: int, out: Path, *, workers: int, ensemble=None, x0=None,
                    device: str | None = None, gpus_per_worker: float = 0, timeouts: Timeouts = Timeouts()) -> list[Path]:
    """Run seed `seed` (or the ensemble's members seed..seed+N-1) spread evenly over `workers` workers."""
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.generate import write_members
    from cos_ray.media import write_json

    seeds = ensemble.member_seeds(seed) if ensemble is not None else [seed]
    if workers < 1 or workers > len(seeds):
        raise UsageError(f"--workers: expected 1..{len(seeds)} (one seed per worker at most) for {len(seeds)} "
                         f"seed(s), got {workers}; --ensemble N sets the number of seeds")
    layout = even_layout(len(seeds), workers)
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)  # errors name the workers' logs
    with Coordinator(model, layout, device=device, gpus_per_worker=gpus_per_worker, timeouts=timeouts) as coordinator:
        members = coordinator.run_unit(task, settings, seeds, ensemble=ensemble, x0=x0, layout=layout)
        first = coordinator.groups[0].workers[0]
        record = waits.get(first.run_record.remote(task, settings, seeds, ensemble), timeouts.control, "run record")
        record["workers"] = {"layout": list(layout), "info": coordinator.groups[0].info}
    videos = write_members(members, out, settings.fps)
    write_json(out / "settings.json", record)
    return videos
