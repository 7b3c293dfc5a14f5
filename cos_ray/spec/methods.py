"""`methods:` - what each unit runs: `baseline` (one seed, untouched), `ensemble` (seeds merged mid-run), or one of
the paper's perturbations - `noise_at_step`, `noise_at_frame`, `swap` (the Chain-of-Steps probes).

A method is a one-key mapping (`{ensemble: {size: 3}}`) or its bare name. Its `params()` go into the unit id and the
`params` JSON column of the store, so adding a method never changes the store's schema: add a `MethodSpec` subclass
and register it in `METHODS`. The hooks a method may override:
- `check()` (its own fields), `check_against(num_layers, steps, path)` and `check_context(context, path)` (rules that
  need the model, the sampler or the sweep's tasks: (path, message) pairs);
- `variants(context)`: the concrete methods one spec entry stands for (a perturbation written with a range of steps,
  frames or layers is one unit per index, so `noise_at_step: {step: 0-100%}` sweeps every step in one line);
- `config(path)` (the ensemble config, or None), `program(path)` (`cos_ray.engine.program.Program` fields),
  `perturbs` (whether the probes' `sensitivity` compares it with the clean run), `source_task(context, index)`
  (the task of a companion run B).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cos_ray.spec.fields import SpecNode


class MethodSpec:
    """Base of the methods; `registry` maps the YAML key to the section class."""

    registry: dict = {}
    kind = "method"
    name = ""

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def member_seeds(self, seed: int) -> list[int]:
        return [seed]

    def config(self, path: str):
        """The engine's intervention config (None: no intervention)."""
        return None

    perturbs = False  # a perturbation of the clean run: the probes' sensitivity compares the two
    runs_model = True  # False: a trivial baseline, made on the driver without model time (cos_ray.sweep.trivial)

    def check_against(self, num_layers: int, steps: int | None, path: str):
        """Problems that need the model and sampler (layer and step ranges): (path, message) pairs."""
        return ()

    def check_context(self, context: "MethodContext", path: str):
        """Problems that need more of the grid point (latent frames, the sweep's tasks): (path, message) pairs."""
        return ()

    def variants(self, context: "MethodContext") -> list["MethodSpec"]:
        """The concrete methods this entry stands for, one unit kind each (default: itself)."""
        return [self]

    def program(self, path: str) -> dict:
        """Fields of the engine's `Program` (perturbations) for a concrete method; {} for none."""
        return {}

    def source_task(self, context: "MethodContext", task_index: int):
        """The TaskRef of a companion run B for task `task_index` of the sweep (swaps), or None."""
        return None


@dataclass(frozen=True)
class MethodContext:
    """What a grid point resolved that methods check and expand against."""

    num_layers: int
    steps: int | None  # None while the sampler section is broken
    latent_frames: int | None  # the latent's frame count: (frames - 1) // 4 + 1
    tasks: list | None = None  # the grid point's TaskRefs (None while the tasks section is broken)
    base: Path = Path(".")  # the spec file's folder


def latent_frames(frames: int) -> int:
    """Latent frames of a video of `frames` (4k+1) frames: every Wan2.2 VAE compresses time by 4."""
    return (frames - 1) // 4 + 1


def _indices(value, count: int | None, path: str, unit: str):
    """(indices, problems) of a range field; indices None when unknown or broken."""
    from cos_ray.engine.steps import parse_index_range
    from cos_ray.errors import UsageError

    if count is None:
        return None, []
    try:
        indices = parse_index_range(value, count, path, unit=unit)
    except UsageError as err:
        field_, _, message = str(err).partition(": ")
        return None, [(field_, message)]
    if not indices:
        return None, [(path, f"selects no {unit}")]
    return indices, []


@dataclass(frozen=True)
class BaselineSpec(MethodSpec, SpecNode):
    """One seed per unit, no intervention: the reference every other method is compared with."""

    name = "baseline"


@dataclass(frozen=True)
class EnsembleSpec(MethodSpec, SpecNode):
    """The paper's ensemble: `size` seeds S..S+size-1, blocks `layers` merged across them during `steps`.

    merge `stream` replaces each chosen block's output (the residual stream) by the seeds' mean - after the first
    merged block every member computes the same thing; `update` averages each block's update (output - input) and adds
    it to each member's own stream, keeping members apart.
    """

    name = "ensemble"
    size: int = 3
    layers: str | int | list[int] = "20-29"
    steps: str | int | list[int] = "0-20%"
    merge: Literal["stream", "update"] = "stream"

    def check(self):
        if self.size < 2:
            yield "size", f"expected an integer >= 2 (an ensemble of one is the baseline), got {self.size}"

    def member_seeds(self, seed: int) -> list[int]:
        return list(range(seed, seed + self.size))

    def config(self, path: str):
        from cos_ray.interventions.configs import EnsembleConfig

        return EnsembleConfig(size=self.size, layers=self.layers, steps=self.steps, merge=self.merge, field=path)

    def check_against(self, num_layers: int, steps: int, path: str):
        from cos_ray.engine.steps import parse_index_range
        from cos_ray.errors import UsageError

        for name, value, count, unit in (("layers", self.layers, num_layers, "layer"), ("steps", self.steps, steps, "step")):
            if count is None:  # the step count is unknown while the sampler section is broken
                continue
            try:
                if not parse_index_range(value, count, f"{path}.{name}", unit=unit):
                    yield f"{path}.{name}", f"selects no {unit}: an ensemble that merges nothing is the baseline"
            except UsageError as err:
                field, _, message = str(err).partition(": ")
                yield field, message


def _check_strength(spec):
    if not 0.0 < spec.strength <= 1.0:
        yield "strength", f"expected a number in (0, 1] (1: replace by noise, less: blend), got {spec.strength}"
    if spec.seed < 0:
        yield "seed", f"expected an integer >= 0, got {spec.seed}"


@dataclass(frozen=True)
class NoiseAtStepSpec(MethodSpec, SpecNode):
    """Noise at step: at denoising step `step` every frame's latent is replaced by N(0, I), blended by `strength`.

    `step` is one step or a range (`0-100%`: every step, one unit each). The noise is seeded from (`seed`, run seed).
    """

    name = "noise_at_step"
    perturbs = True
    step: int | str | list[int] = "0-100%"
    strength: float = 1.0
    seed: int = 1  # not 0: the engine seeds the noise with seed·1000003 + run seed, which for 0 is the run's own seed

    def check(self):
        yield from _check_strength(self)

    def check_context(self, context, path):
        return _indices(self.step, context.steps, f"{path}.step", "step")[1]

    def variants(self, context):
        steps, _ = _indices(self.step, context.steps, "step", "step")
        return [dataclasses.replace(self, step=step) for step in steps]

    def program(self, path):
        from cos_ray.interventions.configs import NoiseAtStepConfig

        return {"noise_at_step": NoiseAtStepConfig(step=self.step, strength=self.strength, seed=self.seed, field=path)}


@dataclass(frozen=True)
class NoiseAtFrameSpec(MethodSpec, SpecNode):
    """Noise at frame: latent frame `frame` is replaced by fresh N(0, I) at every step, blended by `strength`.

    `frame` indexes the latent's frames ((frames - 1) / 4 + 1 of them; 0 holds the first frame), one frame or a
    range (`0-100%`: every latent frame, one unit each). The noise is seeded from (`seed`, run seed).
    """

    name = "noise_at_frame"
    perturbs = True
    frame: int | str | list[int] = "0-100%"
    strength: float = 1.0
    seed: int = 1  # see NoiseAtStepSpec.seed

    def check(self):
        yield from _check_strength(self)

    def check_context(self, context, path):
        return _indices(self.frame, context.latent_frames, f"{path}.frame", "latent frame")[1]

    def variants(self, context):
        frames, _ = _indices(self.frame, context.latent_frames, "frame", "latent frame")
        return [dataclasses.replace(self, frame=frame) for frame in frames]

    def program(self, path):
        from cos_ray.interventions.configs import NoiseAtFrameConfig

        return {"noise_at_frame": NoiseAtFrameConfig(frame=self.frame, strength=self.strength, seed=self.seed,
                                                     field=path)}


@dataclass(frozen=True)
class SwapSourceSpec(SpecNode):
    """Run B of a swap: exactly one of `task` (index in the sweep's tasks), `offset` (the task `offset` places
    after A's, wrapping around) or `folder` (a sample folder, relative to the spec file)."""

    task: int | None = None
    offset: int | None = None
    folder: str | None = None

    @classmethod
    def shorthand(cls, raw):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int):
            return {"task": raw}
        return {"folder": raw} if isinstance(raw, str) else raw

    def check(self):
        given = [name for name in ("task", "offset", "folder") if getattr(self, name) is not None]
        if len(given) != 1:
            yield "", ("expected exactly one of task (an index in the sweep's tasks), offset (the task that many "
                       f"places after A's) or folder (a sample folder), got {', '.join(given) or 'none'}")
        if self.task is not None and self.task < 0:
            yield "task", f"expected an index >= 0, got {self.task}"
        if self.offset is not None and self.offset < 1:
            yield "offset", f"expected an integer >= 1, got {self.offset}"

    def as_dict(self) -> dict:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}


_NEXT_TASK = SwapSourceSpec(offset=1)


@dataclass(frozen=True)
class SwapSpec(MethodSpec, SpecNode):
    """Latent swap: at step `step`, block `layer`'s output (visual tokens, every CFG branch) of run A is replaced by
    run B's - same seed, the image and prompt of task `source` (default: the next task of the sweep).

    `step` and `layer` are one index or a range (`layer: 0-100%`: every layer, one unit each).
    """

    name = "swap"
    perturbs = True
    step: int | str | list[int] = 0
    layer: int | str | list[int] = "0-100%"
    source: int | str | SwapSourceSpec | None = None

    @property
    def source_spec(self) -> SwapSourceSpec:
        if self.source is None:
            return _NEXT_TASK
        if isinstance(self.source, SwapSourceSpec):
            return self.source
        return SwapSourceSpec(**SwapSourceSpec.shorthand(self.source))

    def params(self) -> dict:
        return {"step": self.step, "layer": self.layer, "source": self.source_spec.as_dict()}

    def check_context(self, context, path):
        problems = list(_indices(self.step, context.steps, f"{path}.step", "step")[1])
        problems += _indices(self.layer, context.num_layers, f"{path}.layer", "layer")[1]
        source, where = self.source_spec, f"{path}.source"
        tasks = context.tasks
        if source.folder is not None:
            try:
                _folder_task(source.folder, context.base)
            except Exception as err:  # noqa: BLE001 - UsageError naming the folder
                problems.append((f"{where}.folder", str(err)))
        elif tasks is not None and source.task is not None and source.task >= len(tasks):
            problems.append((f"{where}.task",
                             f"task {source.task} is out of range 0-{len(tasks) - 1} (the sweep has {len(tasks)})"))
        elif tasks is not None and source.offset is not None and len(tasks) < 2:
            problems.append((where, "a swap with the next task needs at least 2 tasks; give source: {folder: ...}"))
        return problems

    def variants(self, context):
        steps, _ = _indices(self.step, context.steps, "step", "step")
        layers, _ = _indices(self.layer, context.num_layers, "layer", "layer")
        return [dataclasses.replace(self, step=step, layer=layer, source=self.source_spec)
                for step in steps for layer in layers]

    def program(self, path):
        from cos_ray.interventions.configs import SwapConfig

        return {"swap": SwapConfig(layer=self.layer, step=self.step, field=path)}

    def source_task(self, context, task_index):
        source = self.source_spec
        if source.folder is not None:
            return _folder_task(source.folder, context.base)
        if source.task is not None:
            return context.tasks[source.task]
        return context.tasks[(task_index + source.offset) % len(context.tasks)]


def _folder_task(folder: str, base: Path):
    """The one sample in `folder` (a sample folder, or a tree holding exactly one)."""
    from cos_ray.errors import UsageError
    from cos_ray.spec.tasks import TasksSpec, resolve_tasks

    tasks = resolve_tasks(TasksSpec(folder=folder), base)
    if len(tasks) != 1:
        raise UsageError(f"tasks {folder}: expected one sample folder (first_frame.png + prompt.txt), "
                         f"found {len(tasks)} samples")
    return tasks[0]


@dataclass(frozen=True)
class FirstFrameSpec(MethodSpec, SpecNode):
    """Trivial baseline: the input image held for the whole video. What a score means is read against it."""

    name = "first_frame"
    runs_model = False


@dataclass(frozen=True)
class GroundTruthSpec(MethodSpec, SpecNode):
    """Trivial baseline: the task's reference video (`ground_truth.mp4`), the top of a scorer's range."""

    name = "ground_truth"
    runs_model = False


METHODS = {"baseline": BaselineSpec, "ensemble": EnsembleSpec, "noise_at_step": NoiseAtStepSpec,
           "noise_at_frame": NoiseAtFrameSpec, "swap": SwapSpec, "first_frame": FirstFrameSpec,
           "ground_truth": GroundTruthSpec}
MethodSpec.registry = METHODS
