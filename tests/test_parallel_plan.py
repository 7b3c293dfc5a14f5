"""`cos-ray plan SPEC --gpu NAME --gpus N` on the real job (jobs/vbvr-wan22.yaml) over a shape-only A14B checkpoint:
every layout's memory and time, Wan2.2's published table beside the estimate of the same case, and the refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.published import A14B_TRANSFORMER

from cos_ray.cli import main
from cos_ray.model.memory import GIB, layout_memory, transformer_parameters

JOB = Path(__file__).resolve().parents[1] / "jobs" / "vbvr-wan22.yaml"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """jobs/vbvr-wan22.yaml with its checkpoint a shape-only A14B and its tasks 10 generated mazes (VBVR-Bench and
    the weights are not on this machine); everything else as committed."""
    from fixtures.published import write_shape_only_a14b

    folder = tmp_path_factory.mktemp("plan")
    checkpoint = write_shape_only_a14b(folder / "Wan2.2-I2V-A14B-Diffusers")
    text = JOB.read_text()
    text = re.sub(r"(?m)^(  name: )\S+", rf"\g<1>{checkpoint}", text, count=1)
    text = re.sub(r"(?m)^tasks: .*$", "tasks: {generate: {family: maze, n: 10, seed: 0}}", text)
    path = folder / "vbvr-wan22.yaml"
    path.write_text(text)
    return path


def plan(spec, *arguments):
    return CliRunner().invoke(main, ["plan", str(spec), "--show", "0", "--out", str(spec.parent / "results"),
                                     *arguments])


def test_the_plan_prints_every_layout_and_matches_wan22s_own_table(job):
    result = plan(job, "--gpu", "h100-80gb", "--gpus", "8")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "the spec's layout: Ulysses-2 + FSDP2: fits (42.1 GiB per GPU)" in out  # 26.6/2 x 2 experts + 2 blocks, ...
    assert "experts 27.9 GiB (bf16, FSDP2: 1/2 + 2 blocks)" in out  # the memory section knows the layout too
    for layout in ("1 GPU + offload", "Ulysses-2 + FSDP2", "Ulysses-4", "Ulysses-8 + FSDP2"):
        assert re.search(rf"(?m)^  {re.escape(layout)} +\d", out), layout
    assert "GPU-hours" in out and "fastest sweep on 8 x h100-80gb" in out
    estimates = {int(gpus): (float(estimate.replace(",", "")), float(published))
                 for gpus, estimate, published in re.findall(
                     r"(\d) GPU\(s\), [^:]+: estimate ([\d,.]+) s, published ([\d.]+) s", out)}
    assert estimates[1][1] == 327.8 and estimates[8][1] == 52.9
    for estimate, published in estimates.values():
        assert abs(estimate / published - 1) <= 0.25, estimates


def test_ulysses_fsdp_divides_the_weights_and_ulysses_the_activations():
    tokens, batch = 32_760, 2
    alone = layout_memory(A14B_TRANSFORMER, 2, tokens, batch)
    sharded = layout_memory(A14B_TRANSFORMER, 2, tokens, batch, ulysses=8, fsdp=True)
    replicated = layout_memory(A14B_TRANSFORMER, 2, tokens, batch, ulysses=8)
    expert = transformer_parameters(A14B_TRANSFORMER) * 2
    assert alone.experts == 2 * expert and replicated.experts == 2 * expert
    assert sharded.experts == 2 * expert // 8 + 2 * expert // 40  # + the 2 blocks FSDP2 holds whole at a time
    assert sharded.activations == replicated.activations == alone.activations // 8
    assert alone.peak_gib() > 74.5 and sharded.peak_gib() < 22.4  # an 80 GB card cannot, a 24 GB card can
    assert abs(alone.experts / GIB - 53.2) < 0.1


def test_a_spec_layout_that_cannot_fit_is_refused_with_the_fastest_that_can(job, tmp_path):
    spec = tmp_path / "ulysses2.yaml"
    text = job.read_text()
    assert "parallel: {ulysses: 2, fsdp: true}" in text  # the job's own layout fits 48 GB cards; without FSDP2 it cannot
    spec.write_text(text.replace("parallel: {ulysses: 2, fsdp: true}", "parallel: {ulysses: 2, fsdp: false}"))
    result = plan(spec, "--gpu", "l40s-48gb", "--gpus", "8")
    assert result.exit_code == 2, result.output
    assert "model.parallel: the spec's layout (Ulysses-2) cannot fit l40s-48gb" in result.output
    assert "the fastest layout that fits: 1 GPU + offload" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("arguments, message", [
    (["--gpu", "l4-24gb", "--gpus", "2"], "--gpu l4-24gb: no layout of 2 GPU(s) fits 24 GB per GPU"),
    (["--gpu", "v100", "--gpus", "2"], "--gpu: unknown GPU 'v100'; known: h100-80gb"),
    (["--gpu", "h100-80gb"], "--gpu and --gpus go together"),
])
def test_what_cannot_be_planned_is_refused(job, arguments, message):
    result = plan(job, *arguments)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def layout_rows(out: str) -> dict:
    """{layout: (weights GiB, s/trajectory)} from the plan's layouts table."""
    rows = {}
    for line in out.splitlines():
        match = re.match(r"^  (\S.*?) +([\d.]+)GiB +[\d.]+GiB +[\d.]+GiB (?: +(?:fits|-)){3} +([\d,.]+) ", line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3).replace(",", "")))
    return rows


def test_cfg_parallel_layouts_halve_the_step_time_and_a_gpu_count_they_do_not_divide_is_refused(job, tmp_path):
    spec = tmp_path / "cfg.yaml"
    spec.write_text(job.read_text().replace("parallel: {ulysses: 2, fsdp: true}",
                                            "parallel: {ulysses: 2, fsdp: true, cfg: true}"))
    result = plan(spec, "--gpu", "h100-80gb", "--gpus", "8")
    assert result.exit_code == 0, result.output
    assert "the spec's layout: CFG-2 x Ulysses-2 + FSDP2: fits" in result.output
    assert "each worker CFG-2 x Ulysses-2 + FSDP2 over 4 GPUs" in result.output
    rows = layout_rows(result.output)
    for alone, split in (("1 GPU", "CFG-2"), ("Ulysses-2 + FSDP2", "CFG-2 x Ulysses-2 + FSDP2"),
                         ("Ulysses-4", "CFG-2 x Ulysses-4")):
        assert rows[split][0] == rows[alone][0]  # each CFG set holds the replica's weights as the layout alone does
        assert 0.45 <= rows[split][1] / rows[alone][1] <= 0.6, (split, rows)  # half the passes per set, + VAE
    assert "CFG-2 x Ulysses-8" not in rows  # 16 GPUs
    refused = plan(spec, "--gpu", "h100-80gb", "--gpus", "6")
    assert refused.exit_code == 2, refused.output
    assert ("--gpus: 6 GPU(s) do not split into replicas of the spec's layout (CFG-2 x Ulysses-2 + FSDP2: 4 GPUs "
            "each, model.parallel); use a multiple of 4 GPUs") in refused.output
    assert "Traceback" not in refused.output
