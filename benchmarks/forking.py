"""Fig. 3b's job (noise at each of N steps + the clean run) forked vs. from scratch on the tiny preset, in one run.

Targets (issue 19): forward passes forked ÷ unforked <= 0.55; wall time forked ÷ unforked reported beside it. The
passes are counted by a hook on the experts (cond and uncond calls), not taken from the planner; the planner's own
count is printed beside them. Every forked unit's members are checked equal to its unforked run (bit for bit).

    python benchmarks/forking.py [--steps 20] [--scheduler unipc]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SPEC = """\
name: fig3b-bench
model: {{name: tiny, workers: 1}}
tasks: {{generate: {{family: maze, n: 1, seed: 0}}}}
seeds: [1]
sampler: {{steps: {steps}, frames: 5, scheduler: {scheduler}}}
methods:
  - baseline
  - noise_at_step: {{step: 0-100%}}
"""


class Passes:
    """Engine intervention: counts the experts' forward calls (cond and uncond) of every run it is added to."""

    def __init__(self):
        self.count = 0

    def __call__(self, run):
        from diffusers.hooks.hooks import ModelHook

        counter = self

        class Count(ModelHook):
            def pre_forward(self, module, *args, **kwargs):
                counter.count += 1
                return args, kwargs

        for name, module in run.experts.items():
            run.hooks.add(module, Count(), f"bench.count.{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--scheduler", default="unipc")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from cos_ray.model.loader import load_pipeline
    from cos_ray.probes.program import run_program
    from cos_ray.spec.expand import expand
    from cos_ray.spec.forks import fork_groups, forward_passes
    from cos_ray.spec.load import load_spec
    from cos_ray.sweep.forks import run_fork_group

    folder = Path(tempfile.mkdtemp())
    (folder / "fig3b.yaml").write_text(SPEC.format(steps=args.steps, scheduler=args.scheduler))
    units = [unit.loaded() for unit in expand(load_spec(str(folder / "fig3b.yaml")))]
    model = load_pipeline("tiny")
    groups = fork_groups(units)
    planned = forward_passes(groups)

    forked_passes, started = Passes(), time.perf_counter()
    forked = {}
    peak_snapshots = 0
    for group in groups:
        for outcome in run_fork_group(model, group, interventions=[forked_passes]):
            assert outcome.error is None, outcome.error
            forked[outcome.unit_id] = outcome.members
            peak_snapshots = max(peak_snapshots, outcome.snapshot_bytes)
    forked_s = time.perf_counter() - started

    unforked_passes, started = Passes(), time.perf_counter()
    for unit in units:
        members = run_program(model, unit.task, unit.settings, list(unit.seeds), unit.program, ensemble=unit.ensemble,
                              x0=unit.x0, interventions=[unforked_passes])
        for one, other in zip(members, forked[unit.unit_id]):
            assert one.steps == other.steps and torch.equal(one.final_latent, other.final_latent)
            assert np.array_equal(one.video, other.video)
    unforked_s = time.perf_counter() - started

    print(f"job: {len(units)} units (clean + noise at each of {args.steps} steps), {args.scheduler}, tiny preset, "
          f"{len(groups)} group(s) of {[len(group) for group in groups]}")
    print(f"forward passes: forked {forked_passes.count}, unforked {unforked_passes.count}, "
          f"ratio {forked_passes.count / unforked_passes.count:.3f} (planner: {planned[0]} / {planned[1]} = "
          f"{planned[0] / planned[1]:.3f}; target <= 0.55)")
    print(f"wall time: forked {forked_s:.1f} s, unforked {unforked_s:.1f} s, ratio {forked_s / unforked_s:.3f}")
    print(f"snapshot: {peak_snapshots / 1024:.1f} KiB each (one member, latent + scheduler state); every forked "
          "unit equals its unforked run bit for bit")


if __name__ == "__main__":
    main()
