"""Ulysses-2, FSDP2 and CFG-parallel on CPU over gloo: step time against one rank, and per-rank weight memory.

Two spawned processes (one torch thread each: one rank per core) hold the same `WanTransformer3DModel` built from a
config (random weights, float32) three times: unsharded, Ulysses-2 (diffusers' context parallelism, weights
replicated) and FSDP2 + Ulysses-2 (`cos_ray.engine.parallel.apply_layout`, the code the workers run). One round runs,
in an order that rotates every round (interleaved, so drift hits every variant alike):
- one rank: rank 0 runs the unsharded model's forward while rank 1 waits at a barrier;
- Ulysses-2: both ranks run the forward, each on half of the tokens;
- FSDP2 + Ulysses-2: the same with each rank holding half of every block's weights (all-gathered per block);
- CFG step, one rank: rank 0 runs a guided step's two forwards (cond, then uncond: another text) as diffusers'
  pipeline does, under `cache_context("cond" | "uncond")`, and combines them; rank 1 waits;
- CFG-2 step: the same step with rank 0 computing the cond forward and rank 1 the uncond one at the same time, the
  predictions exchanged (`cos_ray.engine.cfg_parallel`, through `apply_layout`).
It prints the median step times, the ratios to their one-rank baseline (target for Ulysses-2: <= 0.6; CFG-2 ideally
0.5 + one exchange), the parameter bytes each rank holds between forwards with FSDP2 and without (target ratio
<= 0.55), and the largest difference of each variant's output to its one-rank baseline.

    python benchmarks/parallel.py                       # 4,096 tokens, 4 blocks, dim 256, 7 rounds
    python benchmarks/parallel.py --frames 8 --rounds 5 # 8,192 tokens

Tokens = latent frames x (height / 2) x (width / 2) (patch 1x2x2); the default is 4 x 32 x 32 = 4,096.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

VARIANTS = ("one rank", "Ulysses-2", "FSDP2 + Ulysses-2", "CFG step, one rank", "CFG-2 step")
BASELINE = {"Ulysses-2": "one rank", "FSDP2 + Ulysses-2": "one rank", "CFG-2 step": "CFG step, one rank"}
ALONE = ("one rank", "CFG step, one rank")  # rank 1 idles
GUIDANCE = 5.0


def config(args) -> dict:
    return dict(patch_size=[1, 2, 2], num_attention_heads=args.heads, attention_head_dim=args.dim // args.heads,
                in_channels=16, out_channels=16, text_dim=64, freq_dim=64, ffn_dim=4 * args.dim,
                num_layers=args.blocks, cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=1024)


def inputs(args):
    import torch

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(1, 16, args.frames, args.size, args.size, generator=generator)  # (batch, C, F, H, W)
    text = torch.randn(1, 32, 64, generator=generator)  # (batch, text tokens, text_dim)
    negative = torch.randn(1, 32, 64, generator=generator)  # the uncond pass's text
    return hidden, torch.tensor([500.0]), text, negative


def guided_step(model, hidden, timestep, text, negative):
    """One CFG step's denoiser work as `WanImageToVideoPipeline` does it: cond, then uncond, then combined."""
    with model.cache_context("cond"):
        cond = model(hidden, timestep, text, return_dict=False)[0]
    with model.cache_context("uncond"):
        uncond = model(hidden, timestep, negative, return_dict=False)[0]
    return uncond + GUIDANCE * (cond - uncond)


def build(args):
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return WanTransformer3DModel(**config(args)).eval()


def resident_bytes(model) -> int:
    """Parameter bytes this rank holds between forwards (a DTensor's local shard for FSDP2)."""
    total = 0
    for parameter in model.parameters():
        local = parameter.to_local() if hasattr(parameter, "to_local") else parameter
        total += local.numel() * local.element_size()
    return total


def rank_main(rank: int, address: str, args, out: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    from cos_ray.cluster.collective import join_process_group
    from cos_ray.engine import parallel

    join_process_group(address, rank, 2, "gloo", 120)
    hidden, timestep, text, negative = inputs(args)
    models = {"one rank": build(args)}
    models["CFG step, one rank"] = models["one rank"]
    for name, options in (("Ulysses-2", dict(ulysses=2)), ("FSDP2 + Ulysses-2", dict(ulysses=2, fsdp=True)),
                          ("CFG-2 step", dict(cfg=True))):
        layout = parallel.ParallelLayout(**options)
        model = build(args)
        parallel.apply_layout({"high": model}, layout, parallel.device_mesh(layout))
        models[name] = model
    memory = {name: resident_bytes(model) for name, model in models.items()}
    times = {name: [] for name in VARIANTS}
    cpu = {name: [] for name in VARIANTS}  # this rank's CPU seconds: its share of the work, whatever the contention
    outputs = {}
    with torch.inference_mode():
        for round_ in range(args.rounds + 1):  # round 0 warms up (FSDP's lazy init, allocator)
            shift = round_ % len(VARIANTS)
            for name in VARIANTS[shift:] + VARIANTS[:shift]:
                dist.barrier()
                start, start_cpu = time.perf_counter(), time.process_time()
                if name.startswith("CFG") and (name not in ALONE or rank == 0):
                    outputs[name] = guided_step(models[name], hidden, timestep, text, negative)
                elif name not in ALONE or rank == 0:
                    outputs[name] = models[name](hidden, timestep, text, return_dict=False)[0]
                used = time.process_time() - start_cpu
                dist.barrier()  # the step ends when both ranks are done (rank 1 idles for the ALONE ones)
                if round_:
                    times[name].append(time.perf_counter() - start)
                    cpu[name].append(used)
    if rank == 0:
        diffs = {name: float((outputs[name] - outputs[BASELINE.get(name, name)]).abs().max()) for name in VARIANTS}
        torch.save(dict(times=times, cpu=cpu, memory=memory, diffs=diffs), Path(out) / "result.pt")
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="latent frames")
    parser.add_argument("--size", type=int, default=64, help="latent height = width (tokens: frames * (size/2)^2)")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    import torch
    import torch.multiprocessing as mp

    from cos_ray.cluster.collective import Rendezvous

    tokens = args.frames * (args.size // 2) ** 2
    rendezvous = Rendezvous("127.0.0.1", 2, 120)
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(rank_main, args=(rendezvous.address, args, out), nprocs=2, start_method="spawn")
        result = torch.load(Path(out) / "result.pt")
    medians = {name: statistics.median(values) for name, values in result["times"].items()}
    memory = result["memory"]
    cpu = {name: statistics.median(values) for name, values in result["cpu"].items()}
    print(f"model: {args.blocks} blocks, dim {args.dim} ({args.heads} heads), {tokens:,} tokens, float32, "
          f"{args.rounds} rounds interleaved, 1 thread per rank, gloo")
    print("| variant | step s (median) | ratio to one rank | rank 0 CPU s | ratio | weights per rank MiB | ratio "
          "| max diff to one rank |")
    print("|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        base = BASELINE.get(name, name)
        print(f"| {name} | {medians[name]:.3f} | {medians[name] / medians[base]:.3f} | {cpu[name]:.3f} | "
              f"{cpu[name] / cpu[base]:.3f} | {memory[name] / 2**20:.1f} | "
              f"{memory[name] / memory[base]:.3f} | {result['diffs'][name]:.2e} |")
    print(f"Ulysses-2 step time / one rank: {medians['Ulysses-2'] / medians['one rank']:.3f} (target <= 0.6)")
    print(f"CFG-2 step time / one rank's CFG step: {medians['CFG-2 step'] / medians['CFG step, one rank']:.3f} "
          "(ideal 0.5 + one exchange of the prediction)")
    print(f"FSDP2 weights per rank / unsharded: {memory['FSDP2 + Ulysses-2'] / memory['Ulysses-2']:.3f} "
          "(target <= 0.55)")


if __name__ == "__main__":
    main()
