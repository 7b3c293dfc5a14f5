"""jobs/paper/distillation*.yaml: the base at 50 and at 4 steps, and base + Wan2.2-Lightning at 4 steps, validated and
expanded against fixture checkpoint and LoRA files (the real ones are 2 x 57 GB and 2 x 1.2 GB)."""

from __future__ import annotations

from pathlib import Path

import yaml

from cos_ray.spec.expand import expand
from cos_ray.spec.load import validate
from test_spec_units import TASKS, _fake_vbvr_checkpoint

PAPER = Path(__file__).resolve().parents[1] / "jobs" / "paper"


def _lightning_file(path: Path) -> Path:
    """A header-true Lightning LoRA (published key names, rank 64, alpha per pair) with one block's tensors."""
    import torch
    from safetensors.torch import save_file

    state = {}
    for module in ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k",
                   "cross_attn.v", "cross_attn.o", "ffn.0", "ffn.2"):
        name = f"diffusion_model.blocks.0.{module}"
        state |= {f"{name}.lora_down.weight": torch.zeros(64, 8), f"{name}.lora_up.weight": torch.zeros(8, 64),
                  f"{name}.alpha": torch.tensor(8.0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def _load(name: str, tmp_path: Path):
    data = yaml.safe_load((PAPER / name).read_text())
    data["model"]["name"] = str(_fake_vbvr_checkpoint(tmp_path / "Wan2.2-I2V-A14B"))
    data["tasks"] = str(TASKS)
    if "lora" in data["model"]:
        for expert in ("high", "low"):
            data["model"]["lora"][expert] = str(_lightning_file(tmp_path / "Lightning" / f"{expert}_noise_model.safetensors"))
    return data, validate(data)


def test_the_base_job_runs_50_steps_with_cfg_and_the_lightning_protocol_without_the_loras(tmp_path):
    _, spec = _load("distillation.yaml", tmp_path)
    settings = sorted((point.settings for point in spec.points), key=lambda s: s.steps)
    assert [(s.steps, s.guidance, s.guidance_2, s.boundary, s.scheduler) for s in settings] == [
        (4, 1.0, 1.0, 0.9, "flowmatch-euler"), (50, 5.0, 5.0, 0.875, "flowmatch-euler")]
    units = expand(spec)
    assert {unit.settings.steps for unit in units} == {4, 50} and {unit.method for unit in units} == {"baseline", "ensemble"}
    assert all(not unit.identity["model"]["lora"] for unit in units)


def test_the_lightning_job_names_its_lora_pair_and_matches_the_base_jobs_tasks_and_seeds(tmp_path):
    data, spec = _load("distillation-lightning.yaml", tmp_path)
    base_data, base = _load("distillation.yaml", tmp_path / "base")
    assert [point.settings for point in spec.points] == [p.settings for p in base.points if p.settings.steps == 4]
    assert (data["seeds"], data["methods"]) == (base_data["seeds"], base_data["methods"])
    units = expand(spec)
    for unit in units:
        lora = unit.identity["model"]["lora"]
        assert {expert: (entry["convention"], entry["layers_injected"]) for expert, entry in lora.items()} == {
            "transformer": ("lightning", 10), "transformer_2": ("lightning", 10)}
    assert len(units) == len([u for u in expand(base) if u.settings.steps == 4])
