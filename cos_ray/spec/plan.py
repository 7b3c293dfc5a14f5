"""The dry run: what a spec would execute - units, runs, model forward passes - and an estimate of the compute.

Forward passes count CFG: an expert with guidance > 1 runs a conditional and an unconditional pass per step. FLOPs
are estimated per pass from the transformer's shape (dim, FFN width, blocks) and the token count (latent frames x
patches): linear layers 2·tokens·params, self-attention 4·tokens²·dim, cross-attention over the text tokens. VAE
decodes and text encoding are left out (a few percent for the 14B models). GPU-hours assume `GPU_FLOPS` sustained.

Memory: per worker, weights + activations + text encoder and VAE (`cos_ray.model.memory` states the formula), for
the largest video and the most seeds any unit puts on one worker, against `model.gpu_memory_gib`; a layout that
cannot fit is refused (UsageError, exit 2) with its numbers and what would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cos_ray.errors import UsageError
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
    from cos_ray.spec.forks import search_of, search_passes

    passes, flops, by_method = 0, 0.0, {}
    per_pass: dict = {}
    for unit in units:
        runs = len(unit.seeds)
        runs_model = unit.method_spec is None or unit.method_spec.runs_model  # trivial baselines cost nothing
        count = passes_per_run(unit.settings) * runs if runs_model else 0
        if runs_model and search_of(unit) is not None:  # pruned candidates stop at select_at
            count = search_passes(unit)[0]
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


def describe_plan(spec: Spec, units: list[Unit], done: set[str] = frozenset(), show: int = 20,
                  gpu: str | None = None, gpus: int | None = None) -> str:
    """The text `cos-ray plan` prints: a summary, the units (first `show`), and what a resubmission would skip; with
    `gpu` and `gpus`, every parallel layout's memory and time on that many GPUs of that kind (`gpu_plan`)."""
    from cos_ray.spec.forks import describe_forks

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
        describe_forks(todo),  # what sharing prefixes saves (cos_ray.spec.forks)
        f"compute: ~{_flops(summary.flops)} = ~{summary.gpu_hours:,.3g} GPU-hours at {GPU_FLOPS / 1e12:.0f} TFLOP/s "
        "(transformer passes only)",
    ]
    lines += memory_lines(spec, units)
    if gpu is not None or gpus is not None:
        from cos_ray.spec.gpu_plan import gpu_plan_lines

        if gpu is None or gpus is None:
            raise UsageError("--gpu and --gpus go together: the GPU kind (e.g. h100-80gb) and how many of them")
        lines += gpu_plan_lines(spec, todo or units, gpu, gpus)
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


DEFAULT_SIZE = (480, 832)  # VBVR-Bench's first frames; a run sized from its first frame is planned at this size


def _component_bytes(model: str) -> tuple[int | None, int | None]:
    """(text encoder bytes in bf16, VAE bytes in fp32) read from the checkpoint's files; None where unknown."""
    from cos_ray.model.checkpoint import inspect_checkpoint
    from cos_ray.model.shapes import safetensors_header

    layout = inspect_checkpoint(model)
    if layout.format == "wan-original" or layout.base_format == "wan-original":
        files = layout.files
        return files["text_encoder"].stat().st_size, files["vae"].stat().st_size  # bf16 T5, fp32 VAE on disk
    sizes = []
    for component, width in (("text_encoder", 2), ("vae", 4)):
        numel = 0
        for path in sorted((layout.path / component).glob("*.safetensors")):
            numel += sum(math.prod(entry["shape"]) for entry in safetensors_header(path).values())
        sizes.append(numel * width if numel else None)
    return sizes[0], sizes[1]


def worker_memories(spec: Spec, units: list[Unit]):
    """(WorkerMemory, frames, (height, width), seeds per worker, rebuild) for the most demanding unit of the spec;
    None for CPU workers and presets."""
    from cos_ray.model.memory import worker_memory
    from cos_ray.model.source import is_preset
    from cos_ray.spec.model import transformer_config

    model = spec.model
    if not model.gpus_per_worker or is_preset(model.name) or not units:
        return None
    config = transformer_config(model.name)
    experts = 2 if spec.family in ("a14b", "tiny-a14b") else 1
    text, vae = _component_bytes(model.name)
    spatial = 16 if spec.family in ("ti2v", "tiny-ti2v") else 8

    def demand(unit):
        settings = unit.settings
        frames = getattr(settings, "nominal_frames", None) or settings.frames or 81
        height, width = (settings.height, settings.width) if settings.height else DEFAULT_SIZE
        per_worker = max(unit.layout) if unit.layout else -(-len(unit.seeds) // model.workers)
        cfg = settings.guidance > 1.0 or settings.guidance_2 > 1.0
        return frames * height * width * per_worker * (2 if cfg else 1), frames, height, width, per_worker, cfg

    _, frames, height, width, per_worker, cfg = max(demand(unit) for unit in units)

    def rebuild(gpus=model.gpus_per_worker, offload=model.offload, frames=frames):
        return worker_memory(config, experts, frames, height, width, per_worker, gpus, offload, text, vae,
                             spatial=spatial, cfg=cfg)

    return rebuild(), frames, (height, width), per_worker, rebuild


def memory_lines(spec: Spec, units: list[Unit]) -> list[str]:
    """The plan's memory section; raises UsageError (exit 2) when the layout cannot fit `model.gpu_memory_gib`."""
    from cos_ray.model.memory import GIB, HEADROOM_GIB, what_would_fit

    found = worker_memories(spec, units)
    if found is None:
        return []
    memory, frames, (height, width), per_worker, rebuild = found
    gpu = spec.model.gpu_memory_gib
    if spec.model.layout().active:
        return _parallel_memory_lines(spec, memory, frames, height, width, per_worker, gpu)
    lines = [f"memory per worker ({frames} frames of {height}x{width}, {per_worker} seed(s) per worker):",
             *memory.lines()]
    if gpu is None:
        lines.append("  verdict: not checked (set model.gpu_memory_gib to the GPUs' memory to check it)")
        return lines
    need = memory.per_gpu / GIB + HEADROOM_GIB
    if memory.fits(gpu):
        lines.append(f"  verdict: fits ({need:,.1f} GiB of {gpu:g} GiB per GPU)")
        return lines
    options = what_would_fit(memory, gpu, frames, rebuild)
    raise UsageError(
        "model: this layout cannot fit: " + f"{need:,.1f} GiB needed on the fullest GPU, {gpu:g} GiB per GPU "
        f"(model.gpu_memory_gib) with gpus_per_worker {spec.model.gpus_per_worker:g}"
        + (", offload" if spec.model.offload else "") + "\n" + "\n".join(memory.lines())
        + "\nwould fit: " + ("; ".join(options) if options else "nothing at this GPU size: use larger GPUs")
    )


def refuse_unfit(spec_path: str, limits=None) -> None:
    """Raise UsageError (exit 2) if the spec's worker layout cannot fit its GPUs; `cos-ray submit` calls it first."""
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    spec = load_spec(spec_path, limits) if limits is not None else load_spec(spec_path)
    if spec.model.gpus_per_worker and spec.model.gpu_memory_gib is not None:
        memory_lines(spec, expand(spec))


def _parallel_memory_lines(spec: Spec, memory, frames: int, height: int, width: int, per_worker: int,
                           gpu: float | None) -> list[str]:
    """The memory section of a spec with `model.parallel`: per GPU of a replica, weights ÷K with FSDP2, activations
    ÷K with Ulysses (`layout_memory`); refused (exit 2) when it cannot fit `model.gpu_memory_gib`."""
    from cos_ray.model.memory import GIB, layout_memory

    layout = spec.model.layout()
    experts = 2 if spec.family in ("a14b", "tiny-a14b") else 1
    per_gpu = layout_memory(transformer_config(spec.model.name), experts, memory.tokens, memory.batch, layout.ulysses,
                            layout.fsdp, False, memory.text_encoder, memory.vae)
    lines = [
        f"memory per GPU ({frames} frames of {height}x{width}, {per_worker} seed(s) per worker, each worker "
        f"{layout.describe()} over {layout.ranks_per_replica} GPUs):",
        f"  weights: experts {per_gpu.experts / GIB:,.1f} GiB (bf16" + (f", FSDP2: 1/{layout.ulysses} + 2 blocks"
                                                                        if layout.fsdp else ", replicated") + "), "
        f"text encoder {per_gpu.text_encoder / GIB:,.1f} GiB, VAE {per_gpu.vae / GIB:,.1f} GiB",
        f"  activations: {per_gpu.activations / GIB:,.1f} GiB (batch {memory.batch} x {memory.tokens:,} tokens, "
        f"1/{layout.ulysses} per GPU: Ulysses)",
        f"  per GPU: {per_gpu.peak_gib():,.1f} GiB with 2 GiB headroom",
    ]
    if gpu is None:
        lines.append("  verdict: not checked (set model.gpu_memory_gib to the GPUs' memory to check it)")
    elif per_gpu.fits(gpu):
        lines.append(f"  verdict: fits ({per_gpu.peak_gib():,.1f} GiB of {gpu:g} GiB per GPU)")
    else:
        raise UsageError(f"model: this layout cannot fit: {per_gpu.peak_gib():,.1f} GiB needed per GPU, {gpu:g} GiB "
                         f"per GPU (model.gpu_memory_gib) with {layout.describe()}; `cos-ray plan SPEC --gpu NAME "
                         "--gpus N` lists the layouts that fit\n" + "\n".join(lines))
    return lines
