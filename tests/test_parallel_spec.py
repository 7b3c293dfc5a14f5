"""`model.parallel` in a spec: a layout that cannot run is refused by `cos-ray spec check` (exit 2, one line naming
the field), before anything loads; a valid one passes (CFG-parallel's guidance refusal: tests/test_parallel_cfg.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cos_ray.cli import main

SPEC = """\
name: parallel
model: {{name: {model}, workers: 2, parallel: {parallel}}}
tasks: {{generate: {{family: maze, n: 1, seed: 0}}}}
seeds: [0, 1]
sampler: {{steps: 2, frames: 5}}
methods: [baseline]
"""


def check(tmp_path, parallel: str, model: str = "tiny"):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(parallel=parallel, model=model))
    return CliRunner().invoke(main, ["spec", "check", str(path)])


@pytest.mark.parametrize("parallel", ["{ulysses: 2, fsdp: true}", "{cfg: true}", "{ulysses: 2, fsdp: true, cfg: true}"])
def test_a_layout_the_model_can_run_passes(tmp_path, parallel):
    result = check(tmp_path, parallel)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("model, parallel, message", [
    ("tiny", "{ulysses: 3}", "model.parallel.ulysses: ulysses 3 does not divide the model's 2 attention heads"),
    ("tiny-reasoner", "{ulysses: 8}", "ulysses 8 does not divide the model's 4 attention heads"),
    ("tiny", "{fsdp: true}", "model.parallel.fsdp: shards the weights over a replica's ranks, so it needs ulysses >= 2"),
    ("tiny", "{ulysses: 2, shards: 4}", "model.parallel: unknown key(s) shards"),
    ("tiny", "{ulysses: two}", "model.parallel"),
])
def test_a_layout_that_cannot_run_is_refused(tmp_path, model, parallel, message):
    result = check(tmp_path, parallel, model)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
