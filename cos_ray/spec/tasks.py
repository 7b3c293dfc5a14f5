"""`tasks:` - the samples a sweep runs on: a folder, or a generator from `cos_ray.tasks`.

A folder is a VBVR-Bench tree (`{split}/{task}/{idx}/`), a folder of sample folders, or one sample folder holding
`first_frame.png` + `prompt.txt` (`cos_ray.tasks.bench.read_tasks` tells them apart). `generate:` names a task family
(`maze`, `grid_path`, `pattern`, see `cos_ray.tasks.families`) with n, seed and the family's parameters; its samples
are identified by (family, parameters, seed, index) and written on demand under the cache by `TaskRef.load()`.
A new kind of task source is one more optional section here plus one branch in `resolve_tasks`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cos_ray.spec.fields import SpecNode


@dataclass(frozen=True)
class GenerateSpec(SpecNode):
    """Samples drawn by a task family's generator: sample i from the seed (seed, i), as `cos-ray tasks generate`."""

    family: str
    n: int = 10
    seed: int = 0
    split: str = "In-Domain_50"
    params: dict[str, Any] = field(default_factory=dict)

    def check(self):
        from cos_ray.errors import UsageError
        from cos_ray.tasks.families import FAMILIES
        from cos_ray.tasks.folder import SPLITS

        if self.family not in FAMILIES:
            yield "family", f"expected one of {', '.join(FAMILIES)}, got {self.family!r}"
            return
        if not 1 <= self.n <= 99999:
            yield "n", f"expected an integer in 1..99999, got {self.n}"
        if self.seed < 0:
            yield "seed", f"expected an integer >= 0, got {self.seed}"
        if self.split not in SPLITS:
            yield "split", f"expected one of {', '.join(SPLITS)}, got {self.split!r}"
        try:
            from cos_ray.tasks.generation import family_params

            family_params(self.family, **self.params)
        except (UsageError, TypeError, ValueError) as err:
            yield "params", str(err)


@dataclass(frozen=True)
class TasksSpec(SpecNode):
    """Exactly one source of samples; `limit` keeps the first N (sorted by split, task, index)."""

    folder: str | None = None
    generate: GenerateSpec | None = None
    limit: int | None = None

    @classmethod
    def shorthand(cls, raw):
        return {"folder": raw} if isinstance(raw, str) else raw

    def check(self):
        if (self.folder is None) == (self.generate is None):
            yield "", "expected exactly one of folder (a path) or generate (a task family)"
        if self.limit is not None and self.limit < 1:
            yield "limit", f"expected an integer >= 1 or null, got {self.limit}"


@dataclass(frozen=True)
class TaskRef:
    """One sample of a sweep, identified by its content (moving the folder keeps its units' ids)."""

    task_id: str
    family: str | None
    identity: dict  # what decides the sample: prompt and first-frame hash, or generator, parameters, seed, index
    folder: str | None = None  # the sample folder (None for a generated sample until `load` writes it)

    def load(self):
        """The `cos_ray.tasks.folder.TaskInput` to run (a generated sample is written under the cache first)."""
        from cos_ray.tasks.folder import read_task_folder

        if self.folder is not None:
            return read_task_folder(self.folder, task_id=self.task_id)
        return read_task_folder(_materialize(self), task_id=self.task_id)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def resolve_tasks(spec: TasksSpec, base: Path, bad: list | None = None) -> list[TaskRef]:
    """The sweep's samples in a stable order; raises UsageError naming the folder or sample that is wrong.

    With `bad` (a list), every sample whose files cannot be used - prompt, first frame, final frame, ground truth,
    each opened and decoded (`cos_ray.tasks.inputs`) - is appended to it as an InputError and left out, so that a
    check reports all of them at once, before any GPU time is spent."""
    if spec.folder is not None:
        from cos_ray.tasks.bench import read_tasks
        from cos_ray.tasks.inputs import check_sample

        folder = Path(spec.folder).expanduser()
        folder = folder if folder.is_absolute() else (base / folder)
        samples = read_tasks(folder, bad=bad)[: spec.limit]
        if bad is not None:
            broken = {}
            for sample in samples:
                broken[sample.task_id] = check_sample(sample)
                bad.extend(broken[sample.task_id])
            samples = [sample for sample in samples if not broken[sample.task_id]]
        return [
            TaskRef(
                task_id=sample.task_id,
                family=sample.family,
                identity={"task_id": sample.task_id, "prompt": sample.prompt, "image": _digest(sample.image_path),
                          "family": sample.family},
                folder=str(sample.image_path.parent.resolve()),
            )
            for sample in samples
        ]
    gen = spec.generate
    task = gen.family
    count = gen.n if spec.limit is None else min(gen.n, spec.limit)
    return [
        TaskRef(
            task_id=f"{gen.split}/{task}/{index:05d}",
            family=gen.family,
            identity={"generator": gen.family, "params": dict(sorted(gen.params.items())), "seed": gen.seed,
                      "index": index, "split": gen.split},
        )
        for index in range(count)
    ]


def _materialize(ref: TaskRef) -> Path:
    """Write a generated sample once under `$COS_RAY_CACHE/tasks/<hash>/` (atomic: the writer renames a whole folder)."""
    import json

    import numpy as np

    from cos_ray.errors import UsageError
    from cos_ray.model.tiny import cache_root
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.generation import family_params
    from cos_ray.tasks.generators.common import FPS
    from cos_ray.tasks.writer import write_sample

    ident = ref.identity
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    target = cache_root() / "tasks" / key
    if not (target / "first_frame.png").is_file():
        family = get_family(ident["generator"])
        sample = family.generate(np.random.default_rng([ident["seed"], ident["index"]]),
                                 family_params(ident["generator"], **ident["params"]))
        sample.meta.update(seed=ident["seed"])
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_sample(target, sample, fps=FPS)
        except (UsageError, OSError):  # another thread or process wrote it first (the writer renames a folder)
            if not (target / "first_frame.png").is_file():
                raise
    return target
