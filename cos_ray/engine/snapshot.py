"""A trajectory's state before a step, taken once and continued from by every variant that shares the steps before it.

Variants of one trajectory (noise at step s, a swap at step s, an ensemble merged over 0-10% vs 0-20% of the steps)
are identical up to the step where they first differ. A `Fork` lets one pipeline call take `Snapshot`s at chosen
steps and lets a later call resume from one, skipping the steps before it. A snapshot at step s holds what the
pipeline's loop carries into step s:

- the latent x_s the pipeline holds after step s-1 (before any edit of step s: the edit is what a branch adds);
- the scheduler's complete state (its instance attributes: UniPC's `model_outputs`, `last_sample`, `timestep_list`,
  `lower_order_nums`, `this_order`, step index...; diffusers' Euler only needs the step index) - UniPC's corrector
  rebuilds x_s from that history, so the latent alone would not continue the same trajectory;
- the engine's records of steps 0..s-1 (per-step rows, x̂0 latents and filmstrips kept so far, the previous x̂0 for
  `x0_change`), so a branch's rows cover every step.

Resuming runs the pipeline's own `__call__` over the remaining timesteps only: the scheduler's `set_timesteps` (which
the pipeline calls) is followed by the snapshot's state, and the loop is handed timesteps[s:]. Prompt and image are
encoded again (no denoiser forward). Snapshots stay where the latents are (on the GPU when one is used); their size
is `Snapshot.nbytes`: batch x latent for x_s, plus the scheduler's history (UniPC order 2: about 3 more latents,
Euler: none), plus kept x̂0 latents if asked. For A14B at 480x832, 81 frames: one latent is 16x21x60x104 float32 =
8.4 MB per member, so a UniPC snapshot is about 34 MB per member, an Euler one 8.4 MB.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from cos_ray.errors import UsageError


@dataclass
class Snapshot:
    """The state of a batch of trajectories before step `step` (see the module docstring)."""

    step: int
    latents: object  # `# (batch, channels, frames, h, w)`, before step `step`'s edits
    scheduler: dict  # the scheduler instance's attributes (tensors cloned)
    records: list  # per member: the step records of steps < `step`
    x0_latents: list  # per member: {step: `# (channels, frames, h, w)`}
    filmstrips: list  # per member: decoded x̂0 frames so far
    filmstrip_steps: list
    previous_x0: object = None  # `# (batch, channels, frames, h, w)` or None

    @property
    def members(self) -> int:
        return int(self.latents.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of tensor memory this snapshot holds (latent, scheduler history, kept x̂0)."""
        return _tensor_bytes([self.latents, self.scheduler, self.x0_latents, self.previous_x0])

    def member(self, index: int) -> "Snapshot":
        """Member `index` of this batch alone (a snapshot of one trajectory), so it can resume in a call of its own:
        a search continues each kept candidate of a batched, merged prefix alone. Sliced: the latent, the previous
        x̂0 and every scheduler tensor shaped like the latents (`# (batch, channels, frames, h, w)`: UniPC's
        `last_sample` and `model_outputs`; lists and dicts searched); per-member lists by index. Tensors are cloned:
        the member shares no memory with the batch."""
        if not 0 <= index < self.members:
            raise UsageError(f"snapshot: member {index} is out of range 0-{self.members - 1}")
        like = (self.latents.ndim, self.members)
        return Snapshot(
            step=self.step,
            latents=self.latents[index: index + 1].clone(),
            scheduler={key: _member_of(value, index, like) for key, value in self.scheduler.items()},
            records=copy.deepcopy(self.records[index: index + 1]),
            x0_latents=[{key: latent.clone() for key, latent in self.x0_latents[index].items()}],
            filmstrips=[list(self.filmstrips[index])],
            filmstrip_steps=list(self.filmstrip_steps),
            previous_x0=None if self.previous_x0 is None else self.previous_x0[index: index + 1].clone(),
        )


def _member_of(value, index: int, like: tuple[int, int]):
    """`value` with every tensor shaped like the batch's latents (`like`: their ndim and batch size) cut to member
    `index`; other tensors and values copied whole."""
    import torch

    if isinstance(value, torch.Tensor):
        if (value.ndim, value.shape[0] if value.ndim else None) == like:
            return value[index: index + 1].clone()
        return value.clone()
    if isinstance(value, list):
        return [_member_of(item, index, like) for item in value]
    if isinstance(value, tuple):
        return tuple(_member_of(item, index, like) for item in value)
    if isinstance(value, dict) and type(value) is dict:
        return {key: _member_of(item, index, like) for key, item in value.items()}
    return copy.deepcopy(value)


def _tensor_bytes(value) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def scheduler_state(scheduler) -> dict:
    """A deep copy of the scheduler's state: its instance attributes except the methods wrapped on it."""
    state = {key: value for key, value in vars(scheduler).items() if not callable(value) or key == "config"}
    return copy.deepcopy(state)


@dataclass
class Fork:
    """What one trajectory does with snapshots: resume from `resume` (None: start from noise) and take one before each
    step of `take` (steps after the resumed one); the snapshots taken are in `taken` after the run."""

    take: frozenset = frozenset()
    resume: Snapshot | None = None
    taken: dict = field(default_factory=dict)  # step -> Snapshot

    def __post_init__(self):
        self.take = frozenset(int(step) for step in self.take)
        start = self.start
        if any(step <= start for step in self.take):
            raise UsageError(f"fork: snapshots are taken after the resumed step {start}, got {sorted(self.take)}")

    @property
    def start(self) -> int:
        return 0 if self.resume is None else self.resume.step

    def install(self, stack, run, arguments: dict, recorder) -> None:
        """Set up the pipeline call of `run` (`cos_ray.engine.trajectory.RunContext`) before it starts: its latents,
        scheduler, clock and records from the snapshot, and the callback that takes the snapshots."""
        pipe, start = run.pipe, self.start
        total = run.clock.total_steps
        if any(step >= total for step in self.take) or start >= total:
            raise UsageError(f"fork: steps {sorted(self.take | {start})} reach past the run's {total} steps")
        scheduler = pipe.scheduler
        edit_callback = arguments.get("callback_on_step_end")

        def callback(pipe, index, timestep, tensors):
            step = index + start  # the pipeline counts from 0 over the timesteps it was handed
            if step + 1 in self.take:
                self.taken[step + 1] = self._snapshot(step + 1, tensors["latents"], scheduler, recorder)
            return edit_callback(pipe, step, timestep, tensors) if edit_callback is not None else {}

        arguments["callback_on_step_end"] = callback
        if self.resume is None:
            return
        snapshot = self.resume
        if snapshot.members != len(run.seeds):
            raise UsageError(f"fork: the snapshot holds {snapshot.members} members, this run {len(run.seeds)}")
        arguments["latents"] = run.latent_edits.apply(start, snapshot.latents.clone())
        run.clock.step = start - 1  # the clock advances on the next cond call: to `start`
        recorder.records = copy.deepcopy(snapshot.records)
        recorder.x0_latents = [{step: latent.clone() for step, latent in kept.items()} for kept in snapshot.x0_latents]
        recorder.filmstrips = [list(strip) for strip in snapshot.filmstrips]
        recorder.filmstrip_steps = list(snapshot.filmstrip_steps)
        recorder._previous_x0 = None if snapshot.previous_x0 is None else snapshot.previous_x0.clone()
        set_timesteps = scheduler.set_timesteps
        step_method = scheduler.step
        full = {}

        def resumed_set_timesteps(*args, **kwargs):
            set_timesteps(*args, **kwargs)
            vars(scheduler).update(copy.deepcopy(snapshot.scheduler))
            full["timesteps"] = scheduler.timesteps
            scheduler.timesteps = scheduler.timesteps[start:]  # what the pipeline's loop iterates over

        def resumed_step(*args, **kwargs):
            if "timesteps" in full:  # the scheduler itself reads its whole schedule (UniPC: the final steps' order)
                scheduler.timesteps = full.pop("timesteps")
            return step_method(*args, **kwargs)

        scheduler.set_timesteps = resumed_set_timesteps
        scheduler.step = resumed_step
        stack.callback(vars(scheduler).pop, "set_timesteps", None)

    @staticmethod
    def _snapshot(step: int, latents, scheduler, recorder) -> Snapshot:
        previous = recorder._previous_x0
        return Snapshot(
            step=step,
            latents=latents.detach().clone(),
            scheduler=scheduler_state(scheduler),
            records=copy.deepcopy(recorder.records),
            x0_latents=[{key: latent.clone() for key, latent in kept.items()} for kept in recorder.x0_latents],
            filmstrips=[list(strip) for strip in recorder.filmstrips],
            filmstrip_steps=list(recorder.filmstrip_steps),
            previous_x0=None if previous is None else previous.clone(),
        )
