"""Programs: probes that need a companion run (CKA against the clean run, swaps) give what direct calls give."""

from __future__ import annotations

import numpy as np
import pytest

from cos_ray.probes.program import Program, run_program
from cos_ray.engine.trajectory import run_trajectory
from cos_ray.errors import UsageError
from cos_ray.interventions.configs import NoiseAtStepConfig, SwapConfig
from cos_ray.probes.configs import EnergyConfig
from cos_ray.tasks.folder import TaskInput


def test_empty_program_is_the_plain_trajectory(tiny_model, task, tiny_settings):
    (plain,) = run_trajectory(tiny_model, task, tiny_settings, [3])
    (member,) = run_program(tiny_model, task, tiny_settings, [3])
    assert np.array_equal(member.video, plain.video) and member.probes == {}


def test_noise_with_sensitivity_and_energy(tiny_model, task, tiny_settings):
    program = Program(noise_at_step=NoiseAtStepConfig(step=5, seed=2), sensitivity="latents",
                      energy=EnergyConfig(layers="20", steps="4-5"))
    members = run_program(tiny_model, task, tiny_settings, [3, 4], program)
    for member in members:
        rows = member.probes["sensitivity"]
        assert [row["step"] for row in rows] == list(range(10))
        assert all(row["cka_dissimilarity"] == 0.0 for row in rows[:5])
        assert all(row["cka_dissimilarity"] > 0.0 for row in rows[5:])
        energy = member.probes["energy"]
        assert {(row["step"], row["layer"], row["member"]) for row in energy} == {
            (4, 20, member.member), (5, 20, member.member)}


def test_swap_program_matches_the_direct_swap(tiny_model, task, tiny_settings, tmp_path):
    from PIL import Image

    from cos_ray.interventions.swap import LatentSwap

    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "b.png")
    source = TaskInput("b", tmp_path / "b.png", "find the shortest path")
    (member,) = run_program(tiny_model, task, tiny_settings, [3],
                            Program(swap=SwapConfig(layer=20, step=1), swap_source=source))
    swap = LatentSwap(SwapConfig(layer=20, step=1))
    run_trajectory(tiny_model, source, tiny_settings, [3], interventions=[swap.capture])
    (direct,) = run_trajectory(tiny_model, task, tiny_settings, [3], interventions=[swap.replace])
    assert np.array_equal(member.video, direct.video)


def test_program_rules():
    with pytest.raises(UsageError, match="sensitivity: compares a perturbed run"):
        Program(sensitivity="latents")
    with pytest.raises(UsageError, match="swap: give both"):
        Program(swap=SwapConfig(layer=1))
