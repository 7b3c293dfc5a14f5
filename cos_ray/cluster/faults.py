"""Fault drills: make one worker of a group pause, die or produce NaN at a chosen denoising step.

How the failure handling is tested on a real cluster (tests/test_cluster_failures.py), and how it can be rehearsed by
hand on a real one. A fault is an engine intervention (`apply(run)`, see `cos_ray.engine.trajectory`) kept on a worker
(`SeedWorker.interventions`) and added to every run that worker makes until the worker is cleared or dies - a fresh
group built after a failure has fresh workers, hence no fault, unless `Coordinator(on_build=...)` injects it again.

- `PauseAt(step, seconds, signal)`: at `step`, write `signal` (a file path: "I am in the denoising loop") and sleep.
  The other members wait in the next collective: a stalled worker, or one the test kills while it sleeps.
- `ExitAt(step)`: the worker's process exits at `step`, like a crash or the OOM killer.
- `RaiseAt(step, message, kind)`: a deterministic failure (`UsageError`, or `InputError` with `kind="input"`) on
  this worker only, as bad input would be.
- `NaNAt(point, step)`: the block at `point` (e.g. `blocks.19`, the block before a merged range) outputs NaN at
  `step` on this worker only; the merge spreads it to every member, which all fail with `NonFiniteMergeError`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


def _block_hook(step: int, action, output_action=None):
    from diffusers.hooks.hooks import ModelHook

    class _Hook(ModelHook):
        """Runs `action` once, on the cond call of `step` (the clock has advanced: this is a block's hook)."""

        def __init__(self, clock):
            super().__init__()
            self.clock, self.done = clock, False

        def _now(self) -> bool:
            return self.clock.step == step and self.clock.branch == "cond" and not self.done

        def pre_forward(self, module, *args, **kwargs):
            if action is not None and self._now():
                self.done = True
                action()
            return args, kwargs

        def post_forward(self, module, output):
            if output_action is not None and self._now():
                self.done = True
                return output_action(output)
            return output

    return _Hook


def _install(run, point: str, hook_class, label: str) -> None:
    from cos_ray.engine.hook_points import block_module, resolve_hook_points

    for hook_point in resolve_hook_points(run.pipe, [point]):
        run.hooks.add(block_module(run.pipe, hook_point), hook_class(run.clock), f"fault.{label}.{hook_point.name}")


@dataclass(frozen=True)
class PauseAt:
    """Sleep `seconds` at the start of `step` (first block), after writing `signal` if given."""

    step: int
    seconds: float
    signal: str | None = None

    def __call__(self, run) -> None:
        def pause():
            if self.signal:
                Path(self.signal).write_text(f"{os.getpid()}\n")
            time.sleep(self.seconds)

        _install(run, "blocks.0", _block_hook(self.step, pause), "pause")


@dataclass(frozen=True)
class ExitAt:
    """End this worker's process at the start of `step` (no cleanup, no exception: a crash)."""

    step: int

    def __call__(self, run) -> None:
        _install(run, "blocks.0", _block_hook(self.step, lambda: os._exit(1)), "exit")


@dataclass(frozen=True)
class NaNAt:
    """The output of the block(s) at `point` is NaN at `step` (cond branch) on this worker."""

    step: int
    point: str = "blocks.19"

    def __call__(self, run) -> None:
        import torch

        def poison(output):  # (batch, seq, dim)
            return torch.full_like(output, float("nan"))

        _install(run, self.point, _block_hook(self.step, None, poison), "nan")


@dataclass(frozen=True)
class RaiseAt:
    """Raise a deterministic failure at the start of `step` on this worker: a `UsageError` (bad input given by the
    user), or with `kind="input"` an `InputError` (a task's own file that cannot be used)."""

    step: int
    message: str = "injected bad input"
    kind: str = "usage"  # "usage" | "input"

    def __post_init__(self):
        if self.kind not in ("usage", "input"):
            from cos_ray.errors import UsageError

            raise UsageError(f"RaiseAt.kind: expected 'usage' or 'input', got {self.kind!r}")

    def __call__(self, run) -> None:
        from cos_ray.errors import InputError, UsageError

        error = InputError if self.kind == "input" else UsageError

        def fail():
            raise error(self.message)

        _install(run, "blocks.0", _block_hook(self.step, fail), "raise")


def _add(worker, fault) -> int:
    worker.interventions.append(fault)
    return len(worker.interventions)


def _clear(worker) -> None:
    worker.interventions.clear()


def inject(group, index: int, fault) -> None:
    """Give worker `index` of `group` (a `WorkerGroup`) the fault for its next runs."""
    group._call("execute", [(_add, fault)], group.timeouts.control, "injecting a fault", at=[index])


def clear(group) -> None:
    """Remove every fault from the group's workers."""
    group.execute(_clear, timeout=group.timeouts.control)
