"""`cos-ray plan SPEC --gpu NAME --gpus N`: what each parallel layout costs on N GPUs of one kind.

For every layout N GPUs allow - replicas of 1 GPU (offloading the idle expert where both do not fit), Ulysses-K
(K GPUs per replica, the sequence split), Ulysses-K + FSDP2 (the weights sharded too), and with guidance > 1 each of
them as CFG-2 (the cond and uncond passes on two sets of K GPUs at once: 2K GPUs per replica) - it prints per GPU the
weights, activations and peak (`cos_ray.model.memory.layout_memory`), whether that fits 80, 48 and 24 GB GPUs,
the time of one trajectory and the sweep's wall time and GPU-hours on the N GPUs; it refuses the spec's own layout
(`model.parallel`) when it cannot fit and names the fastest layout that can.

Time of one trajectory on a replica of K GPUs (stated, not measured here):
- the DiT: the transformer passes' FLOPs (`plan.flops_per_pass`, CFG counted) / (K x `DIT_UTILISATION` x the GPU's
  dense bf16 peak); CFG-2 runs half the passes on each set, at the same time;
- CFG-2: one all-gather of the expert's output (the latent-sized prediction, bf16) between the two sets per step;
  memory per GPU is that of the same Ulysses-K layout (each set holds the whole replica; diffusers runs the
  branches one after the other, so a GPU's activations are one branch's either way);
- Ulysses: 4 all-to-alls per block and pass (q, k, v before attention, the output after) of `tokens x dim` bf16,
  each rank sending (K-1)/K of its 1/K share, at the GPU's link bandwidth, not overlapped. FSDP2's all-gathers are
  prefetched under the previous block's compute and not counted;
- the VAE: the image-to-video pipelines encode the conditioning video (the first frame + zeros, all frames) and decode
  the result, in fp32: FLOPs per pixel-frame counted with `torch.utils.flop_counter` on the Wan2.1 VAE at 81 x 480 x
  832, at `VAE_UTILISATION` of the fp32 peak, on one GPU of the replica;
- offload: 3 expert moves per trajectory (the high-noise expert in, then out as the low-noise one comes in) over PCIe.
The text encoder's one pass is left out (well under 1%). Wan2.2's own table (its README, `assets/comp_effic.png`) is
printed beside the estimate of the same case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cos_ray.errors import UsageError

DIT_UTILISATION = 0.40  # of the dense bf16 peak: ~400 TFLOP/s on an H100 for a 5120-wide DiT at 32k tokens
VAE_UTILISATION = 0.50  # of the fp32 peak (the Wan VAE's 3D convolutions, frame chunk by chunk)
VAE_ENCODE_FLOPS_PER_PIXEL_FRAME = 5.06e6  # Wan2.1 VAE, counted at 81 x 480 x 832 (1.64e14 FLOPs)
VAE_DECODE_FLOPS_PER_PIXEL_FRAME = 8.51e6  # (2.75e14 FLOPs)
OFFLOAD_MOVES = 3

# Wan2.2's published I2V-A14B timings on H100 (seconds per video, README "Computational Efficiency"): 480P, the
# settings of its generate.py: 40 steps, 81 frames, CFG 3.5 on both experts (2 passes a step), the example image
# (832 x 1104 -> 544 x 720 at max area 480 x 832: 21 x 34 x 45 = 32,130 tokens); 1 GPU with --offload_model True,
# 4 and 8 GPUs with --ulysses_size 4/8 --dit_fsdp --t5_fsdp.
WAN22_PUBLISHED = {1: 327.8, 4: 92.4, 8: 52.9}
WAN22_CASE = dict(steps=40, frames=81, height=720, width=544, text=512)


@dataclass(frozen=True)
class Layout:
    ulysses: int
    fsdp: bool
    offload: bool
    cfg: int = 1  # rank sets of the CFG branches: 2 with CFG-parallel

    @property
    def gpus(self) -> int:
        """GPUs per replica."""
        return self.cfg * self.ulysses

    def describe(self) -> str:
        if self.ulysses == 1:
            sequence = "1 GPU" + (" + offload" if self.offload else "")
        else:
            sequence = f"Ulysses-{self.ulysses}" + (" + FSDP2" if self.fsdp else "")
        if self.cfg == 1:
            return sequence
        return "CFG-2" + ("" if self.ulysses == 1 else f" x {sequence}")

    def spec_text(self) -> str:
        """The layout as `model.parallel` writes it."""
        return (f"{{ulysses: {self.ulysses}, fsdp: {str(self.fsdp).lower()}"
                + (", cfg: true}" if self.cfg == 2 else "}"))


def trajectory_seconds(gpu, config: dict, passes: int, flops_per_pass: float, tokens: int, frames: int,
                       pixels: int, layout: Layout, experts: int = 2) -> float:
    """The stated time model (module docstring) for one trajectory of `passes` transformer passes."""
    from cos_ray.model.memory import transformer_parameters

    k = layout.ulysses
    passes = passes / layout.cfg  # each CFG set runs its branch's passes, both sets at once
    dit = passes * flops_per_pass / (k * DIT_UTILISATION * gpu.bf16_tflops * 1e12)
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    volume = 4 * config["num_layers"] * tokens * dim * 2 * (k - 1) / k / k  # bytes per rank per pass
    exchange = passes * volume / (gpu.link_gbps * 1e9) if k > 1 else 0.0
    if layout.cfg > 1:  # per step, each set sends its prediction (out_channels x patch values per token, bf16)
        prediction = tokens * config.get("out_channels", 16) * math.prod(config.get("patch_size", (1, 2, 2))) * 2
        exchange += passes * prediction / (gpu.link_gbps * 1e9)
    vae_flops = frames * pixels * (VAE_ENCODE_FLOPS_PER_PIXEL_FRAME + VAE_DECODE_FLOPS_PER_PIXEL_FRAME)
    vae = vae_flops / (VAE_UTILISATION * gpu.fp32_tflops * 1e12)
    offload = OFFLOAD_MOVES * transformer_parameters(config) * 2 / (gpu.pcie_gbps * 1e9) if layout.offload else 0.0
    return dit + exchange + vae + offload


def candidate_layouts(gpus: int, heads: int, tokens: int, cfg: bool = False) -> list[Layout]:
    """Every layout N GPUs allow: 1 GPU per replica (with and without offload), Ulysses-K for each K > 1 dividing N,
    the heads and the tokens (with and without FSDP2); with `cfg` (an uncond pass to run) each of them but offload
    as CFG-2 too, where 2K divides N."""
    found = [Layout(1, False, False), Layout(1, False, True)]
    for k in range(2, gpus + 1):
        if gpus % k == 0 and heads % k == 0 and tokens % k == 0:
            found += [Layout(k, False, False), Layout(k, True, False)]
    if cfg:
        found += [Layout(layout.ulysses, layout.fsdp, False, cfg=2) for layout in found
                  if not layout.offload and gpus % (2 * layout.ulysses) == 0]
    return found


def _tokens(config: dict, frames: int, height: int, width: int, spatial: int = 8, temporal: int = 4) -> int:
    patch = config.get("patch_size", [1, 2, 2])
    latent = (frames - 1) // temporal + 1
    return latent // patch[0] * (height // (spatial * patch[1])) * (width // (spatial * patch[2]))


def wan22_reference_lines(config: dict) -> list[str]:
    """Wan2.2's published I2V-A14B 480P timings on H100 beside this model's estimate of the same case."""
    from cos_ray.model.memory import GPUS

    case = WAN22_CASE
    tokens = _tokens(config, case["frames"], case["height"], case["width"])
    flops = dit_flops_per_pass(config, tokens, case["text"])
    gpu = GPUS["h100-80gb"]
    lines = [f"Wan2.2's own table (I2V-A14B, 480P: {case['frames']} frames of {case['height']}x{case['width']}, "
             f"{tokens:,} tokens, {case['steps']} steps x 2 CFG passes, h100-80gb; 1 GPU offloads, 4 and 8 run "
             "Ulysses + FSDP):"]
    for count, published in WAN22_PUBLISHED.items():
        layout = Layout(1, False, True) if count == 1 else Layout(count, True, False)
        estimate = trajectory_seconds(gpu, config, 2 * case["steps"], flops, tokens, case["frames"],
                                      case["height"] * case["width"], layout)
        lines.append(f"  {count} GPU(s), {layout.describe()}: estimate {estimate:,.1f} s, published {published:,.1f} s "
                     f"({(estimate / published - 1) * 100:+.0f}%)")
    return lines


def dit_flops_per_pass(config: dict, tokens: float, text: int) -> float:
    """One transformer pass (as `plan.flops_per_pass`, from a token count)."""
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    ffn = config["ffn_dim"]
    linear = 2 * tokens * (4 * dim * dim + 2 * dim * dim + 2 * dim * ffn) + 2 * text * 2 * dim * dim
    attention = 4 * tokens * tokens * dim + 4 * tokens * text * dim
    return config["num_layers"] * (linear + attention)


def gpu_plan_lines(spec, units, gpu_name: str, gpus: int) -> list[str]:
    """The layouts section of `cos-ray plan --gpu NAME --gpus N`; raises UsageError when the spec's own layout cannot
    fit the named GPU (naming the fastest that can) or when nothing fits."""
    from cos_ray.model.memory import GIB, GPUS, PLAN_SIZES_GB, layout_memory
    from cos_ray.spec.model import transformer_config
    from cos_ray.spec.plan import DEFAULT_SIZE, _component_bytes, passes_per_run
    from cos_ray.model.source import is_preset

    if gpu_name not in GPUS:
        raise UsageError(f"--gpu: unknown GPU {gpu_name!r}; known: {', '.join(GPUS)}")
    if gpus < 1:
        raise UsageError(f"--gpus: expected an integer >= 1, got {gpus}")
    gpu = GPUS[gpu_name]
    model = spec.model
    config = transformer_config(model.name)
    experts = 2 if spec.family in ("a14b", "tiny-a14b") else 1
    text, vae = (None, None) if is_preset(model.name) else _component_bytes(model.name)
    runs = [unit for unit in units if unit.method_spec is None or unit.method_spec.runs_model]
    if not runs:
        return ["layouts: no unit runs the model"]
    settings = max((unit.settings for unit in runs), key=lambda s: (s.nominal_frames or 81) * (s.height or 1))
    frames = settings.nominal_frames or settings.frames or 81
    height, width = (settings.height, settings.width) if settings.height else DEFAULT_SIZE
    tokens = _tokens(config, frames, height, width)
    passes = passes_per_run(settings)
    flops = dit_flops_per_pass(config, tokens, settings.max_sequence_length)
    trajectories = sum(len(unit.seeds) for unit in runs)
    most_seeds = max(len(unit.seeds) for unit in runs)
    cfg = settings.guidance > 1.0 or settings.guidance_2 > 1.0

    own = Layout(model.layout().ulysses, model.layout().fsdp, model.offload, model.layout().cfg_degree)
    if model.gpus_per_worker <= 1 and gpus % own.gpus:
        raise UsageError(f"--gpus: {gpus} GPU(s) do not split into replicas of the spec's layout ({own.describe()}: "
                         f"{own.gpus} GPUs each, model.parallel); use a multiple of {own.gpus} GPUs")
    rows = []
    for layout in candidate_layouts(gpus, config["num_attention_heads"], tokens, settings.guidance > 1.0):
        # a unit's seeds spread over the replicas of one group (model.workers of them, as many as the GPUs hold)
        seeds_per_replica = -(-most_seeds // max(1, min(model.workers, gpus // layout.gpus)))
        batch = seeds_per_replica * (2 if cfg else 1)
        memory = layout_memory(config, experts, tokens, batch, layout.ulysses, layout.fsdp, layout.offload, text, vae)
        seconds = trajectory_seconds(gpu, config, passes, flops, tokens, frames, height * width, layout, experts)
        replicas = gpus // layout.gpus
        gpu_hours = trajectories * seconds * layout.gpus / 3600
        rows.append((layout, memory, seconds, replicas, gpu_hours, gpu_hours / gpus))
    lines = [
        f"layouts on {gpus} x {gpu.name} ({gpu.memory_gb:g} GB; {frames} frames of {height}x{width} = {tokens:,} "
        f"tokens, {passes} passes per trajectory, {trajectories:,} trajectories, up to {most_seeds} seed(s) per "
        f"unit spread over a group's replicas; DiT at {DIT_UTILISATION:.0%} of {gpu.bf16_tflops:g} TFLOP/s bf16, VAE at "
        f"{VAE_UTILISATION:.0%} of {gpu.fp32_tflops:g} TFLOP/s fp32):",
        f"  {'layout':25} {'weights/GPU':>11} {'activ./GPU':>10} {'peak/GPU':>9}  "
        + " ".join(f"{size:>3}GB" for size in PLAN_SIZES_GB)
        + f"  {'s/trajectory':>12} {'replicas':>8} {'sweep wall':>10} {'GPU-hours':>9}",
    ]
    for layout, memory, seconds, replicas, gpu_hours, wall_hours in rows:
        fits = " ".join(f"{'fits' if memory.fits(size * 1e9 / GIB) else '  - ':>5}" for size in PLAN_SIZES_GB)
        lines.append(
            f"  {layout.describe():25} {memory.experts / GIB:>8.1f}GiB {memory.activations / GIB:>7.1f}GiB "
            f"{memory.peak_gib():>6.1f}GiB  {fits}  {seconds:>12,.1f} {replicas:>8} {wall_hours:>9,.1f}h "
            f"{gpu_hours:>9,.1f}")
    lines.append("  (weights: the experts' bf16 share on one GPU; peak adds the text encoder "
                 f"{rows[0][1].text_encoder / GIB:.1f} GiB and VAE {rows[0][1].vae / GIB:.1f} GiB on every GPU and "
                 "2 GiB headroom; sweep wall = GPU-hours / GPUs, every replica busy)")
    fitting = [row for row in rows if row[1].fits(gpu.memory_gib)]
    if not fitting:
        raise UsageError(f"--gpu {gpu.name}: no layout of {gpus} GPU(s) fits {gpu.memory_gb:g} GB per GPU for "
                         f"{frames} frames of {height}x{width}; use more GPUs (Ulysses + FSDP2 divides the weights and "
                         "activations), larger GPUs or fewer frames\n" + "\n".join(lines))
    fastest = min(fitting, key=lambda row: (row[5], row[2]))
    quickest = min(fitting, key=lambda row: row[2])
    lines.append(f"  fastest sweep on {gpus} x {gpu.name}: {fastest[0].describe()} ({fastest[3]} replica(s), "
                 f"{fastest[5]:,.1f} h); lowest latency per trajectory: {quickest[0].describe()} "
                 f"({quickest[2]:,.1f} s)")
    own_row = None if model.gpus_per_worker > 1 else next((row for row in rows if row[0] == own), None)
    if model.gpus_per_worker > 1:
        lines.append(f"  the spec's layout: device maps over {model.gpus_per_worker:g} GPUs per worker (one GPU "
                     "computes at a time; its memory is above): prefer a layout of this table (model.parallel)")
    if own_row is not None and not own_row[1].fits(gpu.memory_gib):
        raise UsageError(
            f"model.parallel: the spec's layout ({own.describe()}) cannot fit {gpu.name}: {own_row[1].peak_gib():,.1f} "
            f"GiB per GPU of {gpu.memory_gib:,.1f}; the fastest layout that fits: {fastest[0].describe()} "
            f"(model.parallel: {fastest[0].spec_text()}"
            + (", model.offload: true" if fastest[0].offload else "") + ")\n" + "\n".join(lines))
    if own_row is not None:
        lines.append(f"  the spec's layout: {own.describe()}: fits ({own_row[1].peak_gib():,.1f} GiB per GPU)")
    if experts == 2 and config.get("num_attention_heads") == 40 and config.get("attention_head_dim") == 128:
        lines += wan22_reference_lines(config)
    return lines
