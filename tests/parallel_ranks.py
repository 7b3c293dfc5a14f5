"""Run a job on N real processes joined by one gloo process group (no Ray): the ranks of a parallel mesh.

The parent opens the rendezvous store (`cos_ray.cluster.collective.Rendezvous`, a port the OS picks), spawns the
ranks with torch.multiprocessing (fresh interpreters: torch and Delta do not survive fork), waits for them with a
deadline and kills what is left after it. Each rank calls `job(rank, world, **kwargs)` and its return value comes
back through a file (`torch.save`), so a failing rank's traceback is raised in the parent.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

JOIN_TIMEOUT_S = 60


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

    os.environ.setdefault("COS_RAY_CPU_THREADS", "1")
    rendezvous = Rendezvous("127.0.0.1", world, JOIN_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="ranks-") as out:
        context = mp.start_processes(_rank_main, args=(world, rendezvous.address, out, job, kwargs), nprocs=world,
                                     join=False, start_method="spawn")
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
