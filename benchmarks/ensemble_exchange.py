"""Cost of the cross-worker ensemble merge: per-step time with layers 20-29 merged in `update` mode ÷ without.

Fixed shape (issue 4): 1,024 tokens, dim 512 (8 heads x 64), 40 blocks, a `WanTransformer3DModel` built from a config
with random weights and fed random latents (no pipeline: the DiT is where the exchange happens). A step is two
forwards (cond, uncond) as with CFG; merging, each forward all-reduces 10 blocks' updates `# (tokens, dim)`.
Measured in one run, interleaved (merge / no merge) so drift on a shared machine hits both alike:
- N=2 workers (one core each here), N=3 (oversubscribed on 2 cores), and the in-process ensemble (one worker, the
  seeds as one batch) - each as a ratio to the same workers without merging (target for N=2: <= 1.05);
- bytes all-reduced per step and the all-reduce bandwidth between the workers;
- from that bandwidth, exchange time ÷ step time at the production shape (A14B, 480x832, 81 frames: 32,760 tokens
  x 5120, 10 layers x 2 CFG branches per merged step), the step time estimated from FLOPs.

    python benchmarks/ensemble_exchange.py [--steps 2] [--repeats 2] [--only-n2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

LAYERS = tuple(range(20, 30))
FRAMES, HEIGHT, WIDTH = 4, 32, 32  # latent grid; patch (1, 2, 2) -> 4 x 16 x 16 = 1,024 tokens
TEXT_TOKENS = 64


def dit_config(dim: int, heads: int, blocks: int) -> dict:
    return dict(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=16,
                out_channels=16, text_dim=dim, freq_dim=256, ffn_dim=3 * dim, num_layers=blocks, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", rope_max_seq_len=1024)


def forward_flops(tokens: int, dim: int, ffn: int, blocks: int, text: int) -> float:
    """FLOPs of one DiT forward: projections, self- and cross-attention, FFN (2 FLOPs per multiply-add)."""
    per_token = 4 * dim * dim + 2 * tokens * dim + 2 * dim * dim + 2 * text * dim + 2 * dim * ffn
    return 2.0 * (per_token * tokens + 2 * text * dim * dim) * blocks


# -- code sent to the workers (cos_ray.cluster.worker.SeedWorker.execute) -----------------------------------------
def build(worker, config: dict) -> int:
    """Build the DiT and fixed random inputs on this worker; returns its parameter count."""
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    worker.state["dit"] = WanTransformer3DModel(**config).eval()
    worker.state["text"] = {branch: torch.randn(1, TEXT_TOKENS, config["text_dim"]) for branch in ("cond", "uncond")}
    return sum(p.numel() for p in worker.state["dit"].parameters())


def steps(worker, count: int, merge: bool, batch: int, seed: int) -> dict:
    """Time `count` steps (cond + uncond forwards) of a batch of `batch` seeds, merging layers 20-29 or not."""
    import torch
    import torch.distributed as dist

    from cos_ray.engine.clock import StepClock
    from cos_ray.engine.hooks import installed_hooks
    from cos_ray.engine.seeds import LocalSeeds
    from cos_ray.engine.hook_points import every_expert
    from cos_ray.interventions.cross_seed import CrossSeed, CrossSeedHook, MeanOperator

    dit, text = worker.state["dit"], worker.state["text"]
    group = worker.seeds or LocalSeeds(batch)
    clock = StepClock(total_steps=1, step=0)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(batch, 16, FRAMES, HEIGHT, WIDTH, generator=generator)  # (seeds, channels, f, h, w)
    timestep = torch.full((batch,), 500.0)
    config = CrossSeed(operator=MeanOperator(), points=tuple(every_expert(LAYERS)), steps=frozenset({0}), mode="update")
    bytes_before = worker.seeds.bytes if worker.seeds is not None else 0
    times = []
    with installed_hooks([dit]) as hooks, torch.inference_mode():
        if merge:
            for layer in LAYERS:
                hooks.add(dit.blocks[layer], CrossSeedHook(config, clock, group, f"blocks.{layer}"),
                          f"bench.{layer}")
        if dist.is_initialized():
            dist.barrier()  # start together: without merging nothing else keeps the workers in step
        for _ in range(count):
            start = time.perf_counter()
            for branch in ("cond", "uncond"):
                clock.branch = branch
                dit(hidden_states=latents, timestep=timestep, encoder_hidden_states=text[branch].expand(batch, -1, -1),
                    return_dict=False)
            times.append(time.perf_counter() - start)
    exchanged = (worker.seeds.bytes if worker.seeds is not None else 0) - bytes_before
    return {"times": times, "bytes_per_step": exchanged / count}


def bandwidth(worker, megabytes: float, repeats: int) -> float:
    """Seconds per all-reduce (the group's `sum`) of a float32 tensor of `megabytes` MiB."""
    import torch

    local = torch.ones(1, int(megabytes * 2**20 / 4))  # (1 seed, elements)
    worker.seeds.sum(local)
    start = time.perf_counter()
    for _ in range(repeats):
        worker.seeds.sum(local)
    return (time.perf_counter() - start) / repeats


# -- driver ------------------------------------------------------------------------------------------------------
def measure(group, layout, batch: int, count: int, repeats: int) -> dict:
    """Interleaved merge / no-merge runs on the workers of `layout`; the group's step = its slowest worker's."""
    group.form(layout)
    members = len(layout)
    samples = {True: [], False: []}
    bytes_per_step = 0.0
    for merge in (False, True):  # warm-up
        group.execute(steps, 1, merge, batch, 0, members=members, timeout=1800)
    for repeat in range(repeats):
        for merge in (False, True) if repeat % 2 == 0 else (True, False):
            results = group.execute(steps, count, merge, batch, repeat, members=members, timeout=1800)
            samples[merge] += [max(step) for step in zip(*(r["times"] for r in results))]
            if merge:
                bytes_per_step = results[0]["bytes_per_step"]
    plain, merged = statistics.median(samples[False]), statistics.median(samples[True])
    return {"plain": plain, "merged": merged, "ratio": merged / plain, "bytes": bytes_per_step,
            "samples": len(samples[True])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="Steps per measurement.")
    parser.add_argument("--repeats", type=int, default=2, help="Interleaved measurements per configuration.")
    parser.add_argument("--gpu-tflops", type=float, default=400.0,
                        help="Achieved bf16 TFLOP/s assumed for an H100 in the production estimate.")
    parser.add_argument("--only-n2", action="store_true", help="Measure N=2 only (more samples in the same time).")
    args = parser.parse_args()

    import ray

    from cos_ray.cluster.connect import connect
    from cos_ray.cluster.group import WorkerGroup
    from cos_ray.cluster.waits import Timeouts

    dim, heads, blocks, tokens = 512, 8, 40, FRAMES * (HEIGHT // 2) * (WIDTH // 2)
    connect(num_cpus=4)  # $RAY_ADDRESS, else a fresh local cluster
    group = WorkerGroup(3, None, timeouts=Timeouts(collective=600, unit=3600), name="bench")
    try:
        params = group.execute(build, dit_config(dim, heads, blocks), timeout=600)[0]
        print(f"shape: {tokens} tokens x dim {dim} ({heads} heads x {dim // heads}), {blocks} blocks, "
              f"{params / 1e6:.0f} M parameters; merge: layers {LAYERS[0]}-{LAYERS[-1]}, update, every step, "
              f"cond + uncond; steps={args.steps} repeats={args.repeats}; cpus={os.cpu_count()}, 1 thread per worker")
        group.form((1, 1))
        probes = {size: max(group.execute(bandwidth, size, 5, members=2, timeout=600)) for size in (2, 32)}
        configurations = {"N=2 workers x 1 seed": ((1, 1), 1), "N=3 workers x 1 seed (3 on 2 cores)": ((1, 1, 1), 1),
                          "in-process, 1 worker x 2 seeds": ((2,), 2)}
        if args.only_n2:
            configurations = dict(list(configurations.items())[:1])
        results = {name: measure(group, layout, batch, args.steps, args.repeats)
                   for name, (layout, batch) in configurations.items()}
    finally:
        group.shutdown()
        ray.shutdown()

    print(f"\n{'configuration':38s} {'no merge s/step':>15s} {'merge s/step':>13s} {'ratio':>6s} {'all-reduced/step':>17s}")
    for name, r in results.items():
        print(f"{name:38s} {r['plain']:15.2f} {r['merged']:13.2f} {r['ratio']:6.3f} {r['bytes'] / 2**20:13.1f} MiB")
    print(f"(medians of {results['N=2 workers x 1 seed']['samples']} steps each; a step's time is its slowest worker's)")

    print("\nall-reduce between 2 workers (gloo, loopback):")
    for size, seconds in probes.items():
        print(f"  {size:3d} MiB: {seconds * 1000:7.1f} ms  -> {size * 2**20 / seconds / 1e9:.2f} GB/s")
    gbps = 32 * 2**20 / probes[32] / 1e9

    prod_tokens, prod_dim, prod_ffn, prod_text = 21 * 60 * 104 // 4, 5120, 13824, 512  # 32,760 tokens
    prod_bytes = prod_tokens * prod_dim * 4 * len(LAYERS) * 2  # float32 updates, 10 layers x 2 branches
    bench_flops = 2 * forward_flops(tokens, dim, 3 * dim, blocks, TEXT_TOKENS)
    prod_flops = 2 * forward_flops(prod_tokens, prod_dim, prod_ffn, 40, prod_text)
    cpu_rate = bench_flops / results["N=2 workers x 1 seed"]["plain"]
    exchange = prod_bytes / (gbps * 1e9)
    print(f"\nproduction shape (A14B, 480x832, 81 frames): {prod_tokens} tokens x {prod_dim}; "
          f"{prod_bytes / 1e9:.1f} GB all-reduced per merged step; {prod_flops / 1e15:.2f} PFLOP per step (2 forwards)")
    print(f"  exchange at the measured {gbps:.2f} GB/s: {exchange:.1f} s per merged step")
    for label, rate in ((f"this CPU core ({cpu_rate / 1e9:.0f} GFLOP/s measured)", cpu_rate),
                        (f"one H100 at an assumed {args.gpu_tflops:.0f} TFLOP/s", args.gpu_tflops * 1e12)):
        step = prod_flops / rate
        print(f"  step on {label}: {step:,.1f} s -> exchange / step = {exchange / step:.4f}")
    print("  (the same bytes over NCCL at B GB/s take 13.4/B s: at 100 GB/s (NVLink) 0.13 s per merged step)")


if __name__ == "__main__":
    main()
