"""Every spec in jobs/ validates; each paper-figure job switches to a real checkpoint by its model block alone."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from cos_ray.spec.expand import expand
from cos_ray.spec.load import load_spec, validate
from cos_ray.spec.schema import spec_schema
from test_spec_units import _fake_vbvr_checkpoint

JOBS = Path(__file__).resolve().parents[1] / "jobs"
PAPER = sorted(p for p in (JOBS / "paper").glob("*.yaml")  # variants: test_training_jobs; distillation*: real
               if not p.stem.endswith("-tiny-reasoner") and not p.stem.startswith("distillation"))  # checkpoints


@pytest.mark.parametrize("job", sorted(JOBS.rglob("*.yaml")), ids=lambda path: str(path.relative_to(JOBS)))
def test_every_job_matches_the_schema(job):
    jsonschema.validate(yaml.safe_load(job.read_text()), spec_schema())


@pytest.mark.parametrize("job", PAPER, ids=lambda path: path.stem)
def test_paper_jobs_run_the_tiny_preset_and_switch_to_a_checkpoint_by_the_model_block(job, tmp_path):
    spec = load_spec(job)
    assert spec.model.name == "tiny" and expand(spec)

    data = yaml.safe_load(job.read_text())
    data["model"] = {"name": str(_fake_vbvr_checkpoint(tmp_path / "VBVR-Wan2.2")), "gpus_per_worker": 2}
    real = validate(data, base=job.parent)
    assert real.family == "a14b"
    written = data.get("sampler") or {}
    for point in real.points:
        if "steps" not in written:
            assert point.settings.steps == 50  # the checkpoint's defaults, not the tiny preset's
        if "frames" not in written:
            assert point.settings.frames is None  # per sample: its ground truth's frame count (authors' protocol)
        assert point.settings.scheduler == "flowmatch-euler"
    assert {unit.method for unit in expand(real)} == {unit.method for unit in expand(spec)}


def test_the_paper_jobs_cover_every_figure():
    assert [path.stem for path in PAPER] == [
        "ensemble-vs-best-of-n", "fig1-x0-per-step", "fig3b-noise-step-vs-frame", "fig3c-cka-sensitivity",
        "fig5-energy", "fig6-swap-by-layer", "frames-and-steps", "search"]
