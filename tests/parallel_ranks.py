"""Run a job on N real processes joined by one gloo process group (no Ray): the ranks of a parallel mesh.

The parent opens the rendezvous store (`cos_ray.cluster.collective.Rendezvous`, a port the OS picks), starts the
ranks with torch.multiprocessing from a forkserver, waits for them with a deadline and kills what is left after it.
The test process itself is never forked (torch threads, Delta and Ray do not survive fork): the forkserver is a fresh
interpreter that imports torch, diffusers and the engine once (PRELOAD) and has run nothing; each rank is a fork of
it, so the ranks skip those imports (4 ranks importing them at once took 15-45 s on 2 shared cores, a spawn each).
Each rank calls `job(rank, world, **kwargs)` and its return value comes back through a file (`torch.save`), so a
failing rank's traceback is raised in the parent.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

JOIN_TIMEOUT_S = 60
# What every rank imports (the loader's lazy imports of the tiny presets included); a name that fails to import is
# skipped by the forkserver, and the rank then imports it itself.
PRELOAD = ["numpy", "torch", "torch.distributed", "diffusers", "diffusers.pipelines.wan", "transformers",
           "transformers.models.umt5", "scipy.stats", "ftfy", "cos_ray.model.loader", "cos_ray.engine.trajectory",
           "cos_ray.engine.parallel", "cos_ray.probes.program", "cos_ray.cluster.collective"]


def _rank_main(rank: int, world: int, address: str, out: str, job, kwargs: dict) -> None:
    import torch

    torch.set_num_threads(1)
    from cos_ray.cluster.collective import join_process_group, leave_process_group

    try:
        join_process_group(address, rank, world, "gloo", JOIN_TIMEOUT_S)
        result = job(rank, world, **kwargs)
        torch.save({"result": result}, Path(out) / f"rank{rank}.pt")
    except BaseException:  # noqa: BLE001 - the parent raises it with the rank's traceback
        torch.save({"error": traceback.format_exc()}, Path(out) / f"rank{rank}.pt")
        raise
    finally:
        leave_process_group()


def run_ranks(world: int, job, timeout_s: float, **kwargs) -> list:
    """`job(rank, world, **kwargs)` on `world` spawned processes; their results in rank order."""
    import torch
    import torch.multiprocessing as mp

    from cos_ray.cluster.collective import Rendezvous

    os.environ.setdefault("COS_RAY_CPU_THREADS", "1")  # before the forkserver starts: the ranks get its environment
    mp.set_forkserver_preload(PRELOAD)  # read when the forkserver starts (once per test session)
    rendezvous = Rendezvous("127.0.0.1", world, JOIN_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="ranks-") as out:
        context = mp.start_processes(_rank_main, args=(world, rendezvous.address, out, job, kwargs), nprocs=world,
                                     join=False, start_method="forkserver")
        deadline = time.monotonic() + timeout_s
        try:
            while not context.join(timeout=max(0.1, min(5.0, deadline - time.monotonic()))):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{world} ranks of {job.__name__} did not finish within {timeout_s:g} s")
        except mp.ProcessRaisedException:
            pass  # the rank's own traceback is in its file, read below
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
                    process.join(10)
        results = []
        for rank in range(world):
            path = Path(out) / f"rank{rank}.pt"
            if not path.is_file():
                raise RuntimeError(f"rank {rank} of {job.__name__} wrote no result (killed? see its stderr)")
            saved = torch.load(path, weights_only=False)
            if "error" in saved:
                raise RuntimeError(f"rank {rank} of {job.__name__} failed:\n{saved['error']}")
            results.append(saved["result"])
    return results
