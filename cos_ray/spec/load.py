"""Read and validate a spec: YAML -> grid points -> sections -> cross-checks against the model and the tasks.

Everything is checked before anything starts, and every problem is reported at once (`SpecError`, a UsageError:
exit code 2). Nothing is written. Relative paths (model directory, LoRA files, task folder) are relative to the
spec file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.sampler import SamplerSettings
from cos_ray.spec.fields import FAILED, parse, shown
from cos_ray.spec.grid import Variant, expand_grids
from cos_ray.spec.limits import DEFAULT, Limits, check_members, check_runs, check_sampler
from cos_ray.spec.methods import MethodContext, latent_frames
from cos_ray.spec.model import ModelSpec, num_layers
from cos_ray.spec.problems import Problems
from cos_ray.spec.sampler import sampler_settings
from cos_ray.spec.sweep import SweepSpec
from cos_ray.spec.tasks import TaskRef, resolve_tasks


@dataclass
class Point:
    """One validated grid point, with what the model and task folder resolved it to."""

    spec: SweepSpec
    choices: dict[str, int]
    settings: SamplerSettings
    tasks: list[TaskRef]
    num_layers: int


@dataclass
class Spec:
    """A validated spec: the shared model section and every grid point."""

    source: str
    name: str
    data: dict  # the YAML as read (stored in the sweeps table)
    model: ModelSpec  # with absolute paths
    family: str
    base: Path = Path(".")  # the spec file's folder: relative paths in the spec are relative to it
    points: list[Point] = field(default_factory=list)

    def store_uri(self, override: str | None = None) -> str:
        """Where results go: `--out`, else the spec's `out` (relative to the spec file), else ./results."""
        if override:
            return str(override)
        out = self.points[0].spec.out
        if not out:
            return "./results"
        return out if "://" in out or Path(out).is_absolute() else str(self.base / out)


def load_spec(path: str | Path, limits: Limits = DEFAULT) -> Spec:
    """Read a YAML spec file under `limits` (size, encoding, aliases, nesting: `cos_ray.spec.safe_yaml`) and
    validate it; SpecError lists every problem with its field path."""
    from cos_ray.spec.safe_yaml import read_spec_data

    path = Path(path)
    data = read_spec_data(path, limits)
    return validate(data, base=path.resolve().parent, source=str(path), name=path.stem, limits=limits)


def validate(data, base: Path | str = ".", source: str = "<spec>", name: str = "sweep",
             limits: Limits = DEFAULT) -> Spec:
    """Validate spec data (a dict as YAML gives it); `base` anchors relative paths. Sizes - grid points, ensemble
    members, runs - are checked against `limits` from counts, before anything is expanded; every task sample's
    files are opened (`cos_ray.tasks.inputs`) and every bad one reported."""
    base = Path(base).resolve()
    problems = Problems()
    if not isinstance(data, dict):
        problems.add("", f"expected a mapping with keys model, tasks, methods, seeds, ..., got {shown(data)}")
        problems.raise_if_any(source)
    variants = expand_grids(data, problems, max_points=limits.max_points)
    problems.raise_if_any(source)

    parsed: list[tuple[Variant, SweepSpec]] = []
    for variant in variants:
        local = Problems()
        sweep = parse(SweepSpec, variant.data, "", local)
        for where, message in local.items:
            problems.add(variant.locate(where), message)
        if sweep is not FAILED:
            for where, message in [*check_members(sweep.methods, limits=limits), *check_sampler(sweep.sampler)]:
                problems.add(variant.locate(where), message)
            parsed.append((variant, sweep))
    problems.raise_if_any(source)

    models = {repr(sweep.model) for _, sweep in parsed}
    if len(models) > 1:
        problems.add("model", "a sweep runs one model: grids inside model are not supported (write one spec per model)")
        problems.raise_if_any(source)
    model = parsed[0][1].model.resolved(base)
    family = _check_model(model, problems)
    problems.raise_if_any(source)

    layers = num_layers(model.name)
    spec = Spec(source=source, name=parsed[0][1].name or name, data=data, model=model, family=family, base=base)
    tasks_cache: dict[str, list[TaskRef]] = {}
    for variant, sweep in parsed:
        point = _check_point(variant, sweep, family, layers, base, tasks_cache, problems)
        if point is not None:
            spec.points.append(point)
    problems.raise_if_any(source)
    for where, message in check_runs(spec.points, limits, locate=lambda point: Variant(None, point.choices).locate):
        problems.add(where, message)
    problems.raise_if_any(source)
    return spec


def _check_model(model: ModelSpec, problems: Problems) -> str | None:
    from cos_ray.model.source import is_preset, model_family

    try:
        family = model_family(model.name)
    except UsageError as err:
        problems.add("model.name", str(err))
        return None
    if not is_preset(model.name):
        try:
            num_layers(model.name)
        except UsageError as err:
            problems.add("model.name", str(err))
    if model.experts:
        from cos_ray.errors import CheckpointError
        from cos_ray.model.checkpoint import inspect_checkpoint

        try:
            inspect_checkpoint(model.name, experts=model.experts_files())
        except CheckpointError as err:
            problems.add("model.experts", str(err))
    for expert, file in model.lora_files().items():
        if not Path(file).is_file():
            problems.add(f"model.lora.{expert}", f"file {file} does not exist")
    return family


def _check_point(variant, sweep, family, layers, base, tasks_cache, problems) -> Point | None:
    ok = True
    try:
        settings = sampler_settings(sweep.sampler, family)
    except UsageError as err:
        local = Problems()
        local.absorb(err)
        for where, message in local.items:
            problems.add(variant.locate(where), message)
        settings, ok = None, False
    steps = settings.steps if settings is not None else None
    if settings is not None and isinstance(sweep.model.parallel, dict) and sweep.model.parallel.get("cfg") is True:
        problem = sweep.model.layout().guidance_problem(settings.guidance)  # CFG-parallel needs the uncond pass
        if problem:
            problems.add(variant.locate("model.parallel.cfg"), problem)
            ok = False
    key = repr(sweep.tasks)
    if key not in tasks_cache:
        where = "tasks.folder" if sweep.tasks.folder is not None else "tasks.generate"
        bad: list = []  # every sample whose files cannot be used (InputError), reported together
        try:
            tasks_cache[key] = resolve_tasks(sweep.tasks, base, bad=bad)
        except UsageError as err:
            problems.add(variant.locate(where), str(err))
            tasks_cache[key] = None
        for err in bad:
            problems.add(variant.locate(where), str(err))
        if bad:
            tasks_cache[key] = None
    tasks = tasks_cache[key]
    context = MethodContext(layers, steps, latent_frames(settings.nominal_frames) if settings is not None else None,
                            tasks, base)
    for index, method in enumerate(sweep.methods):
        path = f"methods[{index}].{method.name}"
        for where, message in [*method.check_against(layers, steps, path), *method.check_context(context, path)]:
            problems.add(variant.locate(where), message)
            ok = False
    if sweep.probes is not None:
        for where, message in sweep.probes.check_against(layers, steps, family):
            problems.add(variant.locate(where), message)
            ok = False
    if tasks is None or not ok:
        return None
    return Point(spec=sweep, choices=variant.choices, settings=settings, tasks=tasks, num_layers=layers)
