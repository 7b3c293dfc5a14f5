"""What one unit runs beyond its seeds and ensemble: a perturbation (noise, swap) and the probes that read it.

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
    sensitivity: str | None = None  # "latents" or a hook point: CKA against the clean run, per step

    def __post_init__(self):
        if (self.swap is None) != (self.swap_source is None):
            raise UsageError("swap: give both the swap and its source task (run B)")
        if self.sensitivity is not None and not self.perturbed():
            raise UsageError("sensitivity: compares a perturbed run with the clean one; add noise or a swap")

    def perturbed(self) -> bool:
        return any(item is not None for item in (self.noise_at_step, self.noise_at_frame, self.swap))


def run_program(model, task, settings, seeds: list[int], program: Program | None = None, **trajectory) -> list:
    """`run_trajectory(model, task, settings, seeds, **trajectory)` with the program's interventions and probes."""
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.interventions.noise import apply_noise_at_frame, apply_noise_at_step
    from cos_ray.interventions.swap import LatentSwap
    from cos_ray.probes.cka import sensitivity
    from cos_ray.probes.energy import EnergyProbe
    from cos_ray.probes.states import StateCapture

    program = program or Program()
    extra = list(trajectory.pop("interventions", ()))
    companions = {key: value for key, value in trajectory.items() if key in ("seed_group", "ensemble")}
    interventions = []
    if program.noise_at_step is not None:
        interventions.append(lambda run: apply_noise_at_step(run, program.noise_at_step))
    if program.noise_at_frame is not None:
        interventions.append(lambda run: apply_noise_at_frame(run, program.noise_at_frame))
    if program.swap is not None:
        swap = LatentSwap(program.swap)
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
    if path is None:
        return None
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0  # (H, W)
