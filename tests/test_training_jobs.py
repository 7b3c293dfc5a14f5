"""The jobs on the trained tiny reasoner: each paper job has a `-tiny-reasoner` variant with the same methods, run on
held-out mazes of the model's training distribution; the smoke sweep runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cos_ray.model.source import SHIPPED_PRESETS
from cos_ray.spec.expand import expand
from cos_ray.spec.load import load_spec
from cos_ray.training.data import TRAIN_SEED_BASE
from cos_ray.training.distribution import model_distribution

JOBS = Path(__file__).resolve().parents[1] / "jobs"
# The paper jobs on the tiny preset, each with a `-tiny-reasoner` variant. The distillation jobs run real checkpoints
# (A14B, Lightning LoRAs: tests/test_distillation_jobs.py); their laptop analogue is the pair
# distillation-tiny-reasoner.yaml (the teacher) + distillation-tiny-reasoner-4step.yaml (the distilled student).
ORIGINALS = sorted(p for p in (JOBS / "paper").glob("*.yaml")
                   if "tiny-reasoner" not in p.stem and not p.stem.startswith("distillation"))


def test_the_distillation_pair_has_its_laptop_analogue():
    teacher, student = (load_spec(JOBS / "paper" / f"distillation-tiny-reasoner{tail}.yaml") for tail in ("", "-4step"))
    assert (teacher.model.name, student.model.name) == ("tiny-reasoner", "tiny-reasoner-4step")
    assert {u.method for u in expand(teacher)} == {u.method for u in expand(student)}
    assert [u.task.identity for u in expand(teacher)][:1] == [u.task.identity for u in expand(student)][:1]
shipped = pytest.mark.skipif(not (SHIPPED_PRESETS["tiny-reasoner"] / "model_index.json").is_file(),
                             reason="tiny-reasoner weights not shipped in this checkout")


def test_every_paper_job_has_a_tiny_reasoner_variant():
    for original in ORIGINALS:
        assert (original.parent / f"{original.stem}-tiny-reasoner.yaml").is_file(), original.stem


@shipped
@pytest.mark.parametrize("original", ORIGINALS, ids=lambda p: p.stem)
def test_variant_runs_the_trained_model_on_its_distribution(original):
    path = original.parent / f"{original.stem}-tiny-reasoner.yaml"
    variant = load_spec(path)
    family, params = model_distribution("tiny-reasoner")
    assert variant.model.name == "tiny-reasoner" and variant.family == "tiny-a14b"
    units = expand(variant)
    assert {u.method for u in units} == {u.method for u in expand(load_spec(original))}
    for unit in units:
        assert unit.task.family == family
    generate = yaml.safe_load(path.read_text())["tasks"]["generate"]
    assert generate["family"] == family and generate["params"] == params and generate["seed"] < TRAIN_SEED_BASE


@shipped
def test_smoke_runs_the_tiny_reasoner():
    spec = load_spec(JOBS / "smoke.yaml")
    assert spec.model.name == "tiny-reasoner"
    assert {u.method for u in expand(spec)} == {"first_frame", "baseline", "ensemble"}
