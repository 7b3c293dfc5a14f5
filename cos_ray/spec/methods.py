"""`methods:` - what each unit runs: `baseline` (one seed, untouched), `ensemble` (seeds merged mid-run), or one of
the paper's perturbations - `noise_at_step`, `noise_at_frame`, `swap` (the Chain-of-Steps probes).

A method is a one-key mapping (`{ensemble: {size: 3}}`) or its bare name. Each resolves once, in `variants(context)`,
into the config the engine runs (`cos_ray.interventions.configs`: defaults and validation live there alone, the spec
only parses YAML into it); a concrete variant's `params()` is that config's canonical dict, which goes into the unit
id and the `params` JSON column of the store, so adding a method never changes the store's schema: add a `MethodSpec` subclass
and register it in `METHODS`. The hooks a method may override:
- `check()` (its own fields), `check_against(num_layers, steps, path)` and `check_context(context, path)` (rules that
  need the model, the sampler or the sweep's tasks: (path, message) pairs);
- `variants(context)`: the concrete methods one spec entry stands for (a perturbation written with a range of steps,
  frames or layers is one unit per index, so `noise_at_step: {step: 0-100%}` sweeps every step in one line);
- `config(path)` (the ensemble's `EnsembleConfig`, or None), `program(path)` (`cos_ray.probes.program.Program`
  fields: the perturbation's config),
  `perturbs` (whether the probes' `sensitivity` compares it with the clean run), `source_task(context, index)`
  (the task of a companion run B).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cos_ray.interventions.configs import EnsembleConfig, NoiseAtFrameConfig, NoiseAtStepConfig, SwapConfig
from cos_ray.spec.fields import SpecNode
from cos_ray.spec.limits import SAMPLER_CAPS


class MethodSpec:
    """Base of the methods; `registry` maps the YAML key to the section class."""

    registry: dict = {}
    kind = "method"
    name = ""

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def member_seeds(self, seed: int) -> list[int]:
        return [seed]

    def start_seeds(self, seeds):
        """The sweep's seeds this method starts a unit at (all of them unless the method narrows them)."""
        return seeds

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


def latent_frames(frames: int | None) -> int:
    """Latent frames of a video of `frames` (4k+1) frames: every Wan2.2 VAE compresses time by 4. None (each
    sample's ground-truth count, not known yet): planned as 81 frames (`cos_ray.sampler.DEFAULT_FRAMES`)."""
    from cos_ray.sampler import DEFAULT_FRAMES

    return ((DEFAULT_FRAMES if frames is None else frames) - 1) // 4 + 1


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


def config_problems(build, path: str = ""):
    """(field, message) of the UsageError a config raises while it is built (its validation is the only one)."""
    from cos_ray.errors import UsageError

    try:
        build()
    except UsageError as err:
        field_, _, message = str(err).partition(": ")
        return [(field_, message)]
    return []


class StartSeeds:
    """`starts`: the seeds a several-seed method (ensemble, search) starts at, e.g. [0] with the sweep's seeds "0-2":
    one unit whose members all have a baseline (best-of-N then compares like with like); None: every seed of the
    sweep. Not in the unit's id."""

    def starts_problem(self):
        """("starts", message) when `starts` is not a seed list, else None."""
        if self.starts is not None:
            from cos_ray.spec.sweep import parse_seeds

            try:
                parse_seeds(self.starts)
            except (ValueError, TypeError) as err:
                return "starts", str(err)
        return None

    def start_seeds(self, seeds):
        if self.starts is None:
            return seeds
        from cos_ray.spec.sweep import parse_seeds

        return parse_seeds(self.starts)


@dataclass(frozen=True)
class EnsembleSpec(StartSeeds, MethodSpec, SpecNode):
    """The paper's ensemble (`EnsembleConfig`: defaults, validation and the canonical dict live there): `size` seeds
    S..S+size-1, blocks `layers` merged across them during `steps`.

    merge `stream` replaces each chosen block's output (the residual stream) by the seeds' mean - after the first
    merged block every member computes the same thing; `update` averages each block's update (output - input) and adds
    it to each member's own stream, keeping members apart.
    """

    name = "ensemble"
    size: int = EnsembleConfig.size
    layers: str | int | list[int] = EnsembleConfig.layers
    steps: str | int | list[int] = EnsembleConfig.steps
    merge: Literal["stream", "update"] = EnsembleConfig.merge
    starts: str | list[int] | None = None  # StartSeeds

    def check(self):
        problem = self.starts_problem()
        if problem:
            yield problem
            return
        yield from config_problems(lambda: self.config(""))

    def params(self) -> dict:
        return self.config("").params()

    def member_seeds(self, seed: int) -> list[int]:
        return self.config("").member_seeds(seed)

    def config(self, path: str):
        return EnsembleConfig(size=self.size, layers=self.layers, steps=self.steps, merge=self.merge, field=path)

    def check_against(self, num_layers: int, steps: int, path: str):
        if steps is None:  # the step count is unknown while the sampler section is broken: check the layers only
            # (checked against the most steps a sampler may ask for: a larger count would list its steps one by one)
            return config_problems(lambda: self.config(path).resolved(num_layers, SAMPLER_CAPS["steps"]))
        problems = config_problems(lambda: self.config(path).resolved(num_layers, steps))
        if problems:
            return problems
        resolved = self.config(path).resolved(num_layers, steps)
        return [(f"{path}.{name}", f"selects no {unit}: an ensemble that merges nothing is the baseline")
                for name, unit in (("layers", "layer"), ("steps", "step")) if not getattr(resolved, name)]

    def variants(self, context):
        """The ensemble resolved against the grid point: integer layers and steps (what the unit id hashes)."""
        if context.steps is None:
            return [self]
        resolved = self.config("").resolved(context.num_layers, context.steps)
        return [dataclasses.replace(self, layers=list(resolved.layers), steps=list(resolved.steps))]


@dataclass(frozen=True)
class NoiseAtStepSpec(MethodSpec, SpecNode):
    """Noise at step (`NoiseAtStepConfig`): at denoising step `step` every frame's latent is replaced by N(0, I),
    blended by `strength`.

    `step` is one step or a range (`0-100%`: every step, one unit each). The noise is seeded from (`seed`, run seed).
    """

    name = "noise_at_step"
    perturbs = True
    step: int | str | list[int] = "0-100%"
    strength: float = NoiseAtStepConfig.strength
    seed: int = NoiseAtStepConfig.seed

    def check(self):
        return config_problems(lambda: NoiseAtStepConfig(step=0, strength=self.strength, seed=self.seed, field=""))

    def check_context(self, context, path):
        return _indices(self.step, context.steps, f"{path}.step", "step")[1]

    def variants(self, context):
        steps, _ = _indices(self.step, context.steps, "step", "step")
        return [dataclasses.replace(self, step=step) for step in steps]

    def config(self, path: str):
        """None: a perturbation, not an ensemble (see `program`)."""
        return None

    def edit(self, path: str) -> NoiseAtStepConfig:
        return NoiseAtStepConfig(step=self.step, strength=self.strength, seed=self.seed, field=path)

    def params(self) -> dict:
        return self.edit("").params() if isinstance(self.step, int) else super().params()

    def program(self, path):
        return {"noise_at_step": self.edit(path)}


@dataclass(frozen=True)
class NoiseAtFrameSpec(MethodSpec, SpecNode):
    """Noise at frame (`NoiseAtFrameConfig`): latent frame `frame` is replaced by fresh N(0, I) at every step,
    blended by `strength`.

    `frame` indexes the latent's frames ((frames - 1) / 4 + 1 of them; 0 holds the first frame), one frame or a
    range (`0-100%`: every latent frame, one unit each). The noise is seeded from (`seed`, run seed).
    """

    name = "noise_at_frame"
    perturbs = True
    frame: int | str | list[int] = "0-100%"
    strength: float = NoiseAtFrameConfig.strength
    seed: int = NoiseAtFrameConfig.seed

    def check(self):
        return config_problems(lambda: NoiseAtFrameConfig(frame=0, strength=self.strength, seed=self.seed, field=""))

    def check_context(self, context, path):
        return _indices(self.frame, context.latent_frames, f"{path}.frame", "latent frame")[1]

    def variants(self, context):
        frames, _ = _indices(self.frame, context.latent_frames, "frame", "latent frame")
        return [dataclasses.replace(self, frame=frame) for frame in frames]

    def edit(self, path: str) -> NoiseAtFrameConfig:
        return NoiseAtFrameConfig(frame=self.frame, strength=self.strength, seed=self.seed, field=path)

    def params(self) -> dict:
        return self.edit("").params() if isinstance(self.frame, int) else super().params()

    def program(self, path):
        return {"noise_at_frame": self.edit(path)}


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
    """Latent swap (`SwapConfig`: defaults, validation and the canonical dict live there): at step `step` (or during
    `steps`, in one unit), block `layer` of run A takes run B's values - same seed, the image and prompt of task
    `source` (default: the next task of the sweep, another first frame: A and B differ in their answer).

    `mode`: `update` (default) swaps the block's contribution (output - input), so the layer matters; `stream` swaps
    the whole residual stream (with a shared prompt, flat in the layer by construction). `region`: `all`,
    `foreground` (the task's foreground_mask.png) or a mask image (relative to the spec file).
    `step` and `layer` are one index or a range (`layer: 0-100%`: every layer, one unit each).
    """

    name = "swap"
    perturbs = True
    step: int | str | list[int] = 0
    steps: int | str | list[int] | None = None
    layer: int | str | list[int] = "0-100%"
    mode: Literal["stream", "update"] = SwapConfig.mode
    region: str = SwapConfig.region
    source: int | str | SwapSourceSpec | None = None

    @property
    def source_spec(self) -> SwapSourceSpec:
        if self.source is None:
            return _NEXT_TASK
        if isinstance(self.source, SwapSourceSpec):
            return self.source
        return SwapSourceSpec(**SwapSourceSpec.shorthand(self.source))

    def check(self):
        if self.steps is not None and self.step != 0:
            yield "steps", ("give step (one unit per step) or steps (one unit swapping at every step of the range), "
                            f"not both; got step {self.step!r} and steps {self.steps!r}")
        yield from config_problems(lambda: SwapConfig(layer=0, mode=self.mode, region=self.region, field=""))

    def concrete(self) -> bool:
        return isinstance(self.layer, int) and (isinstance(self.step, int) if self.steps is None else
                                                isinstance(self.steps, list))

    def swap(self, path: str) -> SwapConfig:
        """The engine's config of a concrete variant."""
        step = self.step if self.steps is None else self.steps
        return SwapConfig(layer=self.layer, step=step, mode=self.mode, region=self.region, field=path)

    def params(self) -> dict:
        if not self.concrete():
            return {"step": self.step, "steps": self.steps, "layer": self.layer, "mode": self.mode,
                    "region": self.region, "source": self.source_spec.as_dict()}
        return {**self.swap("").params(), "source": self.source_spec.as_dict()}

    def check_context(self, context, path):
        if self.steps is None:
            problems = list(_indices(self.step, context.steps, f"{path}.step", "step")[1])
        else:
            problems = list(_indices(self.steps, context.steps, f"{path}.steps", "step")[1])
        problems += _indices(self.layer, context.num_layers, f"{path}.layer", "layer")[1]
        base = Path(context.base or ".")
        if self.region not in ("all", "foreground") and not (base / self.region).is_file():
            problems.append((f"{path}.region", f"mask image {base / self.region} not found (expected all, "
                                               "foreground or the path of a mask image, relative to the spec file)"))
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
        layers, _ = _indices(self.layer, context.num_layers, "layer", "layer")
        region = self.region
        if region not in ("all", "foreground"):
            region = str((Path(context.base or ".") / region).resolve())
        common = dict(source=self.source_spec, region=region)
        if self.steps is not None:
            steps, _ = _indices(self.steps, context.steps, "steps", "step")
            return [dataclasses.replace(self, steps=list(steps), layer=layer, **common) for layer in layers]
        steps, _ = _indices(self.step, context.steps, "step", "step")
        return [dataclasses.replace(self, step=step, layer=layer, **common) for step in steps for layer in layers]

    def program(self, path):
        return {"swap": self.swap(path)}

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

from cos_ray.spec.search import SearchSpec  # noqa: E402 - it derives from MethodSpec, defined above

METHODS["search"] = SearchSpec
