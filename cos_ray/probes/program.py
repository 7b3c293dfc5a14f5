"""What one unit runs beyond its seeds and ensemble: a perturbation (noise, swap) and the probes that read it.

It sits above the engine, the interventions and the probes and is the one place that composes them (the engine
imports none of them: arrows point one way, engine <- interventions <- probes.program).

Some probes need a second trajectory: CKA sensitivity compares the perturbed run with the clean run of the same
seeds; a latent swap copies from run B (another image or prompt, same seeds) into run A. `run_program` runs those
companions first and returns A's members, with each probe's rows in `member.probes`. Every trajectory of a program
runs on the same seed group, so a program is the same sequence of collectives on every worker of a group.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cos_ray.errors import UsageError
from cos_ray.interventions.configs import NoiseAtFrameConfig, NoiseAtStepConfig, SwapConfig
from cos_ray.probes.configs import EnergyConfig


@dataclass(frozen=True)
class Program:
    noise_at_step: NoiseAtStepConfig | None = None
    noise_at_frame: NoiseAtFrameConfig | None = None
    swap: SwapConfig | None = None
    swap_source: object = None  # TaskInput of run B, with `swap`
    energy: EnergyConfig | None = None
    sensitivity: object = None  # "latents" or a HookPoint (or its name): CKA against the clean run, per step
    search: object = None  # cos_ray.probes.search.SearchConfig: the unit's seeds are candidates, the best continue

    def __post_init__(self):
        if self.search is not None and (self.perturbed() or self.energy is not None or self.sensitivity is not None):
            raise UsageError(f"{self.search.field}: a search runs clean candidates; it takes no perturbation or probe")
        if (self.swap is None) != (self.swap_source is None):
            raise UsageError("swap: give both the swap and its source task (run B)")
        if self.sensitivity is not None and not self.perturbed():
            raise UsageError("sensitivity: compares a perturbed run with the clean one; add noise or a swap")

    def perturbed(self) -> bool:
        return any(item is not None for item in (self.noise_at_step, self.noise_at_frame, self.swap))


def run_program(model, task, settings, seeds: list[int], program: Program | None = None, **trajectory) -> list:
    """`run_trajectory(model, task, settings, seeds, **trajectory)` with the program's interventions and probes."""
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.interventions.swap import LatentSwap
    from cos_ray.probes.cka import sensitivity
    from cos_ray.probes.energy import EnergyProbe
    from cos_ray.probes.states import StateCapture

    program = program or Program()
    if program.search is not None:  # N candidates to an early step, the best continued (cos_ray.probes.search)
        from cos_ray.probes.search import run_search

        return run_search(model, task, settings, seeds, program.search, **trajectory)
    extra = list(trajectory.pop("interventions", ()))
    companions = {key: value for key, value in trajectory.items() if key in ("seed_group", "ensemble")}
    interventions = []
    for edit in (program.noise_at_step, program.noise_at_frame):
        if edit is not None:
            interventions.append(edit.apply)
    if program.swap is not None:
        swap = LatentSwap(program.swap, mask=region_mask(program.swap, task))
        run_trajectory(model, program.swap_source, settings, seeds, interventions=[swap.capture], **companions)
        interventions.append(swap.replace)
    clean_states = None
    if program.sensitivity is not None:
        clean = StateCapture(program.sensitivity)
        run_trajectory(model, task, settings, seeds, interventions=[clean], **companions)
        clean_states = clean.states
        perturbed = StateCapture(program.sensitivity)
        interventions.append(perturbed)
    energy = None
    if program.energy is not None:
        energy = EnergyProbe(program.energy, foreground_mask=_foreground_mask(task))
        interventions.append(energy)
    members = run_trajectory(model, task, settings, seeds, interventions=interventions + extra, **trajectory)
    for index, member in enumerate(members):
        probes = {}
        if clean_states is not None:
            probes["sensitivity"] = sensitivity(clean_states[index], perturbed.states[index])
        if energy is not None:
            probes["energy"] = [row for row in energy.rows if row["member"] == member.member]
        members[index] = dataclasses.replace(member, probes=probes)
    return members


def _foreground_mask(task):
    path = getattr(task, "foreground_mask_path", None)
    return None if path is None else read_mask(path)


def read_mask(path):
    """A mask image as `# (H, W)` float32 in [0, 1] (nonzero: selected)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0  # (H, W)


def region_mask(swap, task):
    """The pixel mask `# (H, W)` of a swap's `region` on task A: None for `all`, the task's foreground_mask.png for
    `foreground`, else the mask file the region names (resolved by the spec)."""
    from pathlib import Path

    from cos_ray.errors import InputError, UsageError

    if swap.region == "all":
        return None
    if swap.region == "foreground":
        path = getattr(task, "foreground_mask_path", None)
        if path is None:
            raise InputError(f"{swap.field}.region: task {task.task_id} has no foreground_mask.png; use region: all "
                             "or the path of a mask image")
        return read_mask(path)
    path = Path(swap.region)
    if not path.is_file():
        raise UsageError(f"{swap.field}.region: mask image {path} not found (expected all, foreground or a path)")
    return read_mask(path)
