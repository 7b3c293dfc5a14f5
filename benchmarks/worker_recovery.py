"""How fast a worker group notices a worker that died while idle, and what recovering costs (tiny preset, CPU).

A baseline unit runs on worker 0 of a two-worker group; worker 1, idle, is SIGKILLed; a two-member ensemble unit then
needs both workers. Prints: the group's build time, each unit undisturbed, how long the failed attempt took to find
the dead worker (it is found when the unit re-forms the process group), the retry (fresh group: placement, model
loaded, run), and how long an `InputError` raised on every worker takes to fail its unit (no retry, group kept).

    RAY_AUTH_MODE=disabled python benchmarks/worker_recovery.py
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_worker_call_path import SPEC  # noqa: E402  (the units the call-path test runs: a baseline, a 2-worker ensemble)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("COS_RAY_CPU_THREADS", "1")
    from cos_ray.cluster import faults
    from cos_ray.cluster.connect import connect
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.waits import Timeouts
    from cos_ray.model.loader import load_pipeline
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    load_pipeline("tiny", device="cpu")  # the preset is written once, before the workers read it
    path = Path(tempfile.mkdtemp(prefix="cos-ray-recovery-")) / "spec.yaml"
    path.write_text(SPEC)
    units = {unit.method: unit for unit in expand(load_spec(str(path)))}
    one, two = units["baseline"], units["ensemble"]
    connect("local", num_cpus=4)
    start = time.monotonic()
    timeouts = Timeouts(start=120, load=240, join=60, collective=15, unit=150, control=30)
    with Coordinator("tiny", (1, 1), device="cpu", timeouts=timeouts) as coordinator:
        print(f"group of 2 workers built (placement, model loaded): {time.monotonic() - start:.1f} s")
        for unit in (one, two):
            outcome = coordinator.run_with_retries(unit, retries=0)
            print(f"undisturbed {unit.method} (layout {unit.layout}): {outcome.seconds:.2f} s, ok={outcome.ok}")
        coordinator.run_with_retries(one, retries=0)
        os.kill(coordinator.groups[0].info[1].pid, signal.SIGKILL)
        time.sleep(1)
        outcome = coordinator.run_with_retries(two, retries=2)
        failed, retried = outcome.attempts
        print(f"idle worker killed: attempt 1 failed after {failed.seconds:.2f} s ({type(failed.error).__name__}); "
              f"attempt 2 on a fresh group (build + run) {retried.seconds:.1f} s; ok={outcome.ok}")
        for index in (0, 1):
            faults.inject(coordinator.groups[0], index, faults.RaiseAt(step=0, kind="input"))
        outcome = coordinator.run_with_retries(two, retries=2)
        print(f"InputError on both workers: failed in {outcome.seconds:.2f} s, {len(outcome.attempts)} attempt, "
              f"group kept: {coordinator.groups[0].alive}, groups built: {coordinator.built}")


if __name__ == "__main__":
    main()
