"""Step distillation (cos_ray.training.distill), a one-minute smoke: the objective is zero for a student equal to the
teacher under the teacher's own protocol, the knots are the teacher's Euler solve, and a short run exports a student
that loads and samples at its 4-step preset."""

from __future__ import annotations

import numpy as np
import pytest

from cos_ray.training.config import DataConfig
from cos_ray.training.distill import (DistillConfig, distill, distill_loss, export_checkpoint, knot_sigmas,
                                     load_distill_config, teacher_knots)


def _inputs(pipe, config, n=2):
    import torch

    from cos_ray.sampler import WAN_NEGATIVE_PROMPT
    from cos_ray.tasks.generators.maze import PROMPT
    from cos_ray.training.buffer import fill_buffer
    from cos_ray.training.encode import prompt_embeddings

    buffer = fill_buffer(pipe, config.data, config.seed, n, "cpu")
    positive, negative = prompt_embeddings(pipe, PROMPT, WAN_NEGATIVE_PROMPT, config.max_sequence_length, "cpu")
    noise = torch.randn(buffer.targets.shape, generator=torch.Generator().manual_seed(0))
    return buffer.conditions, positive, negative, noise


@pytest.fixture(scope="module")
def teacher():
    import torch

    from cos_ray.model.loader import load_pipeline

    torch.set_num_threads(1)
    return load_pipeline("tiny-reasoner", device="cpu")


def test_the_knots_are_the_teachers_euler_solve_and_a_copy_of_the_teacher_has_zero_loss(teacher):
    import torch

    config = DistillConfig(teacher_steps=4, student_steps=4, teacher_guidance=1.0, batch=4, trajectories=2)
    pipe = teacher.pipe
    conditions, positive, negative, noise = _inputs(pipe, config)
    knots = teacher_knots(pipe.transformer, noise, conditions, positive, negative, config)
    assert knots.shape[0] == 5 and torch.equal(knots[0], noise)
    sigmas = knot_sigmas(4, 5.0)
    u = np.linspace(1, 0, 5)
    assert np.allclose(sigmas.numpy(), 5 * u / (1 + 4 * u)) and float(sigmas[-1]) == 0.0
    # by hand: one Euler step of the teacher's conditional velocity from the noise
    with torch.no_grad():
        v = pipe.transformer(hidden_states=torch.cat([noise, conditions], 1), timestep=torch.full((2,), 1000.0),
                             encoder_hidden_states=positive.expand(2, -1, -1), return_dict=False)[0]
    assert float((knots[1] - (noise + (sigmas[1] - sigmas[0]) * v)).abs().max()) < 1e-5
    pick, knot = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        assert float(distill_loss(pipe.transformer, knots, conditions, positive, pick, knot, config)) < 1e-9
        guided = DistillConfig(teacher_steps=8, student_steps=4, teacher_guidance=5.0, batch=4, trajectories=2)
        target = teacher_knots(pipe.transformer, noise, conditions, positive, negative, guided)
        assert float(distill_loss(pipe.transformer, target, conditions, positive, pick, knot, guided)) > 1e-4


@pytest.mark.timeout(300)
def test_a_short_run_exports_a_student_that_samples_at_four_steps(teacher, tmp_path, task):
    import json

    from cos_ray.engine.call import sample
    from cos_ray.model.loader import load_pipeline
    from cos_ray.sampler import preset_settings

    config = DistillConfig(teacher_steps=8, student_steps=4, batch=2, trajectories=3, refresh=1, steps=3,
                           log_every=1, checkpoint_every=2, device="cpu", data=DataConfig())
    export, step = distill(config, tmp_path / "run", log=lambda *_: None)
    assert step == 3
    log = [json.loads(line) for line in (tmp_path / "run" / "distill_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3] and all(np.isfinite(entry["loss"]) for entry in log)
    record = json.loads((export / "distillation.json").read_text())
    assert record["sampler"]["preset"] == "tiny-reasoner-4step" and record["config"]["teacher"] == "tiny-reasoner"
    assert sorted(p.name for p in (tmp_path / "run").glob("ema_*.pt")) == ["ema_00002.pt", "ema_00003.pt"]
    student = load_pipeline(str(export), device="cpu")
    # a kept checkpoint exported after the run is the run's own export at that step
    again = export_checkpoint(config, tmp_path / "run" / "ema_00003.pt", tmp_path / "again")
    import torch

    mine, theirs = load_pipeline(str(again), device="cpu").pipe.transformer, student.pipe.transformer
    assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    settings = preset_settings("tiny-reasoner-4step", "tiny-a14b").replace(frames=5)
    video = sample(student, task, settings, [0])
    assert np.isfinite(video).all() and video.shape[-1] == 3
    _, resumed = distill(config, tmp_path / "run", log=lambda *_: None)  # a finished run resumes to its end
    assert resumed == 3


def test_the_shipped_config_loads_and_a_bad_one_names_its_field(tmp_path):
    from pathlib import Path

    from cos_ray.errors import UsageError

    config = load_distill_config(Path(__file__).resolve().parents[1] / "training/configs/tiny-reasoner-4step.yaml")
    assert (config.teacher, config.student_steps, config.teacher_steps, config.teacher_guidance) == (
        "tiny-reasoner", 4, 20, 5.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher_steps: 10\nstudent_steps: 4\n")
    with pytest.raises(UsageError, match="teacher_steps: expected a multiple of student_steps"):
        load_distill_config(bad)
