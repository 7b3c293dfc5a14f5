"""The shipped `tiny-reasoner-4step` preset (tiny-reasoner distilled to 4 steps, guidance 1) reasons, checked in CI:
held-out mazes sampled through cos-ray's own inference path (`cos_ray.training.evaluate`, the loader,
`engine.call.sample`) under the student's own sampler preset, and judged against the generator's ground-truth route
(`maze_route.judge`). A student that stopped reasoning - random weights, a broken loader, a preset drifted from the
distillation (CFG put back, another schedule) - fails the bound; and the preset makes one forward pass per step.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_tiny_reasoner import ALPHA, binomial_lower_bound  # tests/ is on sys.path (rootdir, no package)

pytestmark = pytest.mark.timeout(180)

TASK_SEED = 3  # held out (training streams use seeds >= 1000000): the jobs' seed, not the card's test seed 1
N = 12  # mazes: about 0.3 s each at 4 conditional passes on one thread
CARD_SOLVED, CARD_N = 63, 100  # MODEL_CARD.md, held-out table (test seed 1, preset tiny-reasoner-4step, run seed 0)


@pytest.fixture(scope="module")
def student(preset_cache):
    import torch

    torch.set_num_threads(1)
    from cos_ray.model.loader import load_pipeline

    return load_pipeline("tiny-reasoner-4step", device="cpu")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from cos_ray.training.config import DataConfig
    from cos_ray.training.evaluate import held_out_tasks

    return held_out_tasks(tmp_path_factory.mktemp("held-out"), TASK_SEED, N, DataConfig())


def test_the_student_preset_is_the_distillation_protocol():
    from cos_ray.model.source import model_family
    from cos_ray.sampler import preset_settings
    from pathlib import Path

    from cos_ray.training.distill import knot_sigmas, load_distill_config

    config = load_distill_config(Path(__file__).resolve().parents[1] / "training/configs/tiny-reasoner-4step.yaml")
    settings = preset_settings("tiny-reasoner-4step", model_family("tiny-reasoner-4step"))
    assert (settings.steps, settings.shift, settings.scheduler) == (config.student_steps, config.shift,
                                                                    "flowmatch-euler")
    assert settings.guidance == settings.guidance_2 == 1.0
    u = np.linspace(1, 0, 5)
    assert np.allclose(knot_sigmas(4, 5.0).numpy() * 1000, 1000 * 5 * u / (1 + 4 * u))  # 1000, 937.5, 833.3, 625


def test_the_shipped_student_solves_held_out_mazes_in_four_passes(student, held_out):
    from cos_ray.engine.call import sample
    from cos_ray.sampler import preset_settings
    from cos_ray.tasks.folder import read_task_folder
    from cos_ray.training.evaluate import evaluate

    settings = preset_settings("tiny-reasoner-4step", "tiny-a14b")
    calls = []
    handles = [t.register_forward_hook(lambda *_: calls.append(1))
               for t in (student.pipe.transformer, student.pipe.transformer_2)]
    try:
        before = sample(student, read_task_folder(held_out[0]), settings, [0])[0]  # (frames, H, W, 3) in [0, 1]
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == 4, f"guidance 1: one conditional pass per step, 4 steps; counted {len(calls)}"
    assert before.shape == (settings.frames, settings.height, settings.width, 3)

    rows = evaluate(student, held_out, seed=0, settings=settings, methods=("model", "first_frame"))
    solved = {method: sum(r["solved"] for r in rows if r["method"] == method) for method in ("model", "first_frame")}
    bound = binomial_lower_bound(N, CARD_SOLVED / CARD_N, ALPHA)
    print(f"held-out seed {TASK_SEED}: student solves {solved['model']}/{N} at 4 steps (bound {bound}), "
          f"first_frame {solved['first_frame']}/{N}")
    assert solved["model"] >= bound, rows
    assert solved["first_frame"] == 0, rows
