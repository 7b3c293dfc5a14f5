"""The dry run: what a spec would execute - units, runs, model forward passes - and an estimate of the compute.

Forward passes count CFG: an expert with guidance > 1 runs a conditional and an unconditional pass per step. FLOPs
are estimated per pass from the transformer's shape (dim, FFN width, blocks) and the token count (latent frames x
patches): linear layers 2·tokens·params, self-attention 4·tokens²·dim, cross-attention over the text tokens. VAE
decodes and text encoding are left out (a few percent for the 14B models). GPU-hours assume `GPU_FLOPS` sustained.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.spec.load import Spec
from cos_ray.spec.model import transformer_config, vae_config
from cos_ray.spec.unit import Unit

GPU_FLOPS = 400e12  # sustained bf16 FLOP/s of one H100 on a large DiT (about 40% of its dense peak)


@dataclass(frozen=True)
class Plan:
    units: int
    runs: int
    forward_passes: int
    flops: float
    by_method: dict  # method -> (units, runs)

    @property
    def gpu_hours(self) -> float:
        return self.flops / GPU_FLOPS / 3600


def passes_per_run(settings) -> int:
    """Transformer forward passes of one run: steps x (2 with CFG, else 1), per expert by the boundary."""
    cfg = [2 if g > 1.0 else 1 for g in (settings.guidance, settings.guidance_2)]
    if settings.boundary is None or cfg[0] == cfg[1]:
        return settings.steps * cfg[0]
    high = round(settings.steps * (1.0 - settings.boundary))  # approximate: the high-noise share of the steps
    return high * cfg[0] + (settings.steps - high) * cfg[1]


def flops_per_pass(model: str, settings) -> float:
    config, vae = transformer_config(model), vae_config(model)
    dim = config.get("num_attention_heads", 40) * config.get("attention_head_dim", 128)
    ffn = config.get("ffn_dim", 4 * dim)
    layers = config.get("num_layers", 40)
    patch = config.get("patch_size", [1, 2, 2])
    spatial = vae.get("scale_factor_spatial") or 2 ** (len(vae.get("dim_mult", [1, 2, 4, 4])) - 1)
    temporal = vae.get("scale_factor_temporal", 4)
    pixels = settings.height * settings.width if settings.height else (settings.max_area or 480 * 832)
    latent = (settings.nominal_frames - 1) // temporal + 1
    tokens = latent // patch[0] * pixels / (spatial * patch[1]) / (spatial * patch[2])
    text = settings.max_sequence_length
    linear = 2 * tokens * (4 * dim * dim + 2 * dim * dim + 2 * dim * ffn) + 2 * text * 2 * dim * dim
    attention = 4 * tokens * tokens * dim + 4 * tokens * text * dim
    return layers * (linear + attention)


def plan(spec: Spec, units: list[Unit]) -> Plan:
    passes, flops, by_method = 0, 0.0, {}
    per_pass: dict = {}
    for unit in units:
        runs = len(unit.seeds)
        runs_model = unit.method_spec is None or unit.method_spec.runs_model  # trivial baselines cost nothing
        count = passes_per_run(unit.settings) * runs if runs_model else 0
        key = repr(unit.settings)
        if key not in per_pass:
            per_pass[key] = flops_per_pass(unit.model, unit.settings)
        passes += count
        flops += count * per_pass[key]
        seen = by_method.get(unit.method, (0, 0))
        by_method[unit.method] = (seen[0] + 1, seen[1] + runs)
    return Plan(len(units), sum(len(u.seeds) for u in units), passes, flops, by_method)


def _flops(value: float) -> str:
    for unit, scale in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if value >= scale:
            return f"{value / scale:,.3g} {unit}"
    return f"{value / 1e6:,.3g} MFLOP"


def describe_plan(spec: Spec, units: list[Unit], done: set[str] = frozenset(), show: int = 20) -> str:
    """The text `cos-ray plan` prints: a summary, the units (first `show`), and what a resubmission would skip."""
    todo = [unit for unit in units if unit.unit_id not in done]
    summary = plan(spec, todo)
    model = spec.model
    lines = [
        f"spec {spec.source}: sweep {spec.name!r}, model {model.name} ({spec.family}), {len(spec.points)} grid point(s)",
        f"workers per group: {model.workers}, each on "
        + (f"{model.gpus_per_worker:g} GPU(s)" if model.gpus_per_worker else "CPU"),
        f"units: {len(units)} ({len(units) - len(todo)} already in the store, {len(todo)} to run)",
    ]
    for method, (count, runs) in sorted(summary.by_method.items()):
        lines.append(f"  {method}: {count} unit(s), {runs} run(s)")
    lines += [
        f"runs: {summary.runs}",
        f"model forward passes (CFG included): {summary.forward_passes:,}",
        f"compute: ~{_flops(summary.flops)} = ~{summary.gpu_hours:,.3g} GPU-hours at {GPU_FLOPS / 1e12:.0f} TFLOP/s "
        "(transformer passes only)",
    ]
    if todo:
        lines.append("")
        lines.append(f"{'unit':16}  {'method':9}  {'seeds':10}  {'layout':8}  task")
        for unit in todo[:show]:
            seeds = ",".join(str(s) for s in unit.seeds)
            layout = "+".join(str(c) for c in unit.layout)
            lines.append(f"{unit.unit_id:16}  {unit.method:9}  {seeds:10}  {layout:8}  {unit.task.task_id}")
        if len(todo) > show:
            lines.append(f"... and {len(todo) - show} more")
    return "\n".join(lines)
