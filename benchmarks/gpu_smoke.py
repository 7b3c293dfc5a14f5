"""GPU smoke test: parallel layouts first (Ulysses-K, FSDP2), then distributed seed ensembles, NCCL, a tiny and a
mid-size model. The first thing to run wherever GPUs are available (<= 8 minutes on one H100 or several).

Layouts (`--layouts`, on by default; `cos_ray/engine/parallel.py`): on the mid-size model (tiny with --cpu), for each
K = 2, 4, 8 that the GPUs allow (one actor per GPU), Ulysses-K and Ulysses-K + FSDP2 against one GPU: median step time
of a one-seed unit and its ratio to one GPU, each rank's peak CUDA memory and parameter bytes, the largest difference
of the final latent to the one-GPU run; and, where 2 x K GPUs exist, a 2-member ensemble on 2 replicas (merged over
the mesh's seed axis by NCCL) against the same seeds run independently: the merge overhead.

Then, for each model it runs, on one worker group of the Coordinator (`gpus_per_worker=N`: with N > 1 each expert is
sharded over the worker's GPUs by a device map that keeps blocks whole):
- the 2-member ensemble (`update` merge, layers 20-29, early steps) with one seed per worker: the merge all-reduces
  over NCCL between the two workers;
- the in-process reference: the same ensemble with both seeds as one batch on one worker (LocalSeeds, no NCCL),
  compared with the distributed members within a bf16 tolerance (batching and the reduction order change the last
  bits of each merged state; bf16 carries ~3 significant digits);
- independent runs (no ensemble) of the same seeds, one per worker, interleaved with the ensemble runs;
and prints the merge overhead ratio = median ensemble time / median independent-runs time (target <= 1.05), the
largest difference to the reference, the NCCL backend and where the workers ran, then a Markdown table for
benchmarks/README.md.

    python benchmarks/gpu_smoke.py --gpus-per-worker 1            # needs 2 GPUs
    python benchmarks/gpu_smoke.py --gpus-per-worker 2 --repeats 5  # needs 4 GPUs: experts sharded over 2 each

Ray: `$RAY_ADDRESS` if set, else a local cluster on this machine. Without CUDA (or with fewer GPUs than 2 x N in the
cluster) it says so and exits with status 2. `--cpu` runs the same steps on CPU workers over gloo (the tiny model
only) to check the script itself on a machine without GPUs; its timings mean nothing.

The mid-size model: the tiny preset's text encoder, VAE and tokenizer with two A14B-shaped experts of 40 blocks at
dim 1024 (8 heads x 128, FFN 4096; ~0.68 B parameters each, random weights, bf16), written once to --mid-dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

MID = dict(patch_size=[1, 2, 2], num_attention_heads=8, attention_head_dim=128, in_channels=36, out_channels=16,
           text_dim=32, freq_dim=256, ffn_dim=4096, num_layers=40, cross_attn_norm=True,
           qk_norm="rms_norm_across_heads", rope_max_seq_len=1024)
SEEDS = (11, 12)


def write_mid_model(directory: Path) -> Path:
    """The mid-size checkpoint (written once): tiny preset components around two dim-1024 experts, bf16."""
    if (directory / "model_index.json").is_file():
        return directory
    import torch
    from diffusers import WanTransformer3DModel

    from cos_ray.model.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("tiny")
    for offset, name in enumerate(("transformer", "transformer_2")):
        torch.manual_seed(100 + offset)
        setattr(pipe, name, None)
        pipe.register_modules(**{name: WanTransformer3DModel(**MID).to(torch.bfloat16).eval()})
    staging = directory.with_name(directory.name + ".partial")
    pipe.save_pretrained(staging, safe_serialization=True)
    os.rename(staging, directory)
    return directory


def settings_for(name: str, steps: int):
    from cos_ray.sampler import default_settings

    tiny = default_settings("tiny-a14b")
    if name == "tiny":
        return tiny.replace(steps=steps)
    # mid: 17 frames at 240x416 -> 5 x 15 x 26 = 1,950 tokens per seed
    return tiny.replace(steps=steps, frames=17, height=240, width=416, max_area=240 * 416)


def backend_of(worker) -> str:
    import torch.distributed as dist

    return dist.get_backend() if dist.is_initialized() else "none"


def parameters_of(worker) -> int:
    return sum(p.numel() for p in worker.model.pipe.transformer.parameters())


def max_diff(a, b) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def smoke(name: str, model: str, args, task) -> dict:
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.waits import Timeouts
    from cos_ray.interventions.configs import EnsembleConfig
    from cos_ray.spec.unit import Unit

    settings = settings_for(name, args.steps)
    ensemble = EnsembleConfig(size=2, merge="update", steps=args.merge_steps)
    gpus = 0 if args.cpu else args.gpus_per_worker
    timeouts = Timeouts(start=300, load=1800, join=120, collective=300, unit=3600, control=60)
    with Coordinator(model, (1, 1), gpus_per_worker=gpus, device="cpu" if args.cpu else None,
                     timeouts=timeouts) as coordinator:
        group = coordinator.groups[0]
        merged_unit = Unit(task, settings, SEEDS, ensemble, layout=(1, 1))
        independent_unit = Unit(task, settings, SEEDS, None, layout=(1, 1))
        reference = run(coordinator, Unit(task, settings, SEEDS, ensemble, layout=(2,)))  # both seeds, one batch
        run(coordinator, merged_unit)  # warm-up: NCCL communicators, kernels
        run(coordinator, independent_unit)
        times = {"ensemble": [], "independent": []}
        members = None
        for _ in range(args.repeats):
            for kind, unit in (("ensemble", merged_unit), ("independent", independent_unit)):
                start = time.perf_counter()
                result = run(coordinator, unit)
                times[kind].append(time.perf_counter() - start)
                if kind == "ensemble":
                    members = result
        run(coordinator, merged_unit)  # the group stays formed as (1, 1)
        backend = group.execute(backend_of)[0]
        params = group.execute(parameters_of, members=1)[0]
        info = group.info
    diff = max(max_diff(m.video, r.video) for m, r in zip(members, reference))
    latent_diff = max(max_diff(m.final_latent, r.final_latent) for m, r in zip(members, reference))
    ensemble_s, independent_s = statistics.median(times["ensemble"]), statistics.median(times["independent"])
    return dict(model=name, params=params, tokens=tokens(members[0].final_latent), backend=backend,
                devices=[(list(w.gpus), list(w.shard) or [w.device]) for w in info],
                ensemble_s=ensemble_s, independent_s=independent_s, ratio=ensemble_s / independent_s,
                video_diff=diff, latent_diff=latent_diff, ok=diff <= args.tolerance)


LAYOUT_SIZE = dict(frames=17, height=256, width=448)  # 5 x 16 x 28 = 2,240 tokens: divisible by 2, 4 and 8


def layout_settings(name: str, steps: int):
    from cos_ray.sampler import default_settings

    tiny = default_settings("tiny-a14b").replace(steps=steps)
    if name == "tiny":
        return tiny
    return tiny.replace(**LAYOUT_SIZE, max_area=LAYOUT_SIZE["height"] * LAYOUT_SIZE["width"])


def rank_memory(worker) -> dict:
    """This rank's peak CUDA memory and the parameter bytes it holds (a DTensor's local shard under FSDP2)."""
    import torch

    held = 0
    for module in worker.model.experts().values():
        for parameter in module.parameters():
            local = parameter.to_local() if hasattr(parameter, "to_local") else parameter
            held += local.numel() * local.element_size()
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return dict(peak=peak, params=held)


def timed(coordinator, unit, repeats: int) -> tuple[float, list]:
    run(coordinator, unit)  # warm-up: communicators, kernels, FSDP's lazy init
    times, members = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        members = run(coordinator, unit)
        times.append(time.perf_counter() - start)
    return statistics.median(times), members


def layout_smoke(name: str, model: str, args, task, gpus_available: int) -> list[dict]:
    """Ulysses-K (+ FSDP2) against one GPU on one seed; the seed-axis merge overhead where 2 replicas fit."""
    from cos_ray.cluster.coordinator import Coordinator
    from cos_ray.cluster.waits import Timeouts
    from cos_ray.interventions.configs import EnsembleConfig
    from cos_ray.spec.unit import Unit

    settings = layout_settings(name, args.steps)
    gpus = 0 if args.cpu else 1
    device = "cpu" if args.cpu else None
    timeouts = Timeouts(start=300, load=1800, join=120, collective=300, unit=3600, control=60)
    single = Unit(task, settings, SEEDS[:1], None, layout=(1,))
    with Coordinator(model, (1,), gpus_per_worker=gpus, device=device, timeouts=timeouts) as coordinator:
        base_s, base = timed(coordinator, single, args.repeats)
        base_memory = coordinator.groups[0].execute(rank_memory)[0]
    rows = [dict(model=name, layout="1 GPU", step_s=base_s / args.steps, ratio=1.0, peak=base_memory["peak"],
                 params=base_memory["params"], latent_diff=0.0, merge=None)]
    for k in (2, 4, 8):
        if k > gpus_available:
            break
        for fsdp in (False, True):
            parallel = {"ulysses": k, "fsdp": fsdp}
            replicas = 2 if 2 * k <= gpus_available else 1
            with Coordinator(model, (1,) * replicas, gpus_per_worker=gpus, device=device, timeouts=timeouts,
                             parallel=parallel) as coordinator:
                seconds, members = timed(coordinator, single, args.repeats)
                memory = coordinator.groups[0].execute(rank_memory, members=k)
                merge = None
                if replicas == 2:
                    ensemble = EnsembleConfig(size=2, merge="update", steps=args.merge_steps)
                    merged_s, _ = timed(coordinator, Unit(task, settings, SEEDS, ensemble, layout=(1, 1)), args.repeats)
                    independent_s, _ = timed(coordinator, Unit(task, settings, SEEDS, None, layout=(1, 1)),
                                             args.repeats)
                    merge = merged_s / independent_s
            rows.append(dict(model=name, layout=f"Ulysses-{k}" + (" + FSDP2" if fsdp else ""),
                             step_s=seconds / args.steps, ratio=seconds / base_s,
                             peak=max(rank["peak"] for rank in memory), params=max(rank["params"] for rank in memory),
                             latent_diff=max_diff(members[0].final_latent, base[0].final_latent), merge=merge))
            print(f"layout {rows[-1]}", flush=True)
    return rows


def print_layouts(rows: list[dict], args) -> None:
    print(f"layouts: {args.steps} steps, one seed, median of {args.repeats}; merge overhead on 2 replicas")
    print("| model | layout | step s | ratio to 1 GPU | peak GiB/rank | params GiB/rank | max latent diff | "
          "merge overhead |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        merge = "-" if row["merge"] is None else f"{row['merge']:.3f}"
        print(f"| {row['model']} | {row['layout']} | {row['step_s']:.3f} | {row['ratio']:.3f} | "
              f"{row['peak'] / 2**30:.2f} | {row['params'] / 2**30:.3f} | {row['latent_diff']:.2e} | {merge} |")


def run(coordinator, unit) -> list:
    """One attempt of `unit` through the coordinator's one entry point; its members, or what failed it."""
    outcome = coordinator.run_with_retries(unit, retries=0)
    if not outcome.ok:
        raise outcome.error
    return outcome.members


def tokens(latent) -> int:
    """Tokens per seed: the latent `# (channels, frames, h, w)` patched by (1, 2, 2)."""
    _, frames, height, width = latent.shape
    return frames * (height // 2) * (width // 2)


def enough_gpus(args) -> str | None:
    """None if the cluster has the GPUs, else why not."""
    import ray

    needed = 2 * args.gpus_per_worker
    have = ray.cluster_resources().get("GPU", 0)
    if have < needed:
        return (f"this Ray cluster has {have:g} GPU(s); 2 workers x {args.gpus_per_worker} GPU(s) need {needed} "
                "(no CUDA device here? run it on a GPU machine, or pass --cpu to check the script on CPU)")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus-per-worker", type=int, default=1)
    parser.add_argument("--models", default="tiny,mid", help="comma-separated: tiny, mid")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--merge-steps", default="0-20%", help="ensemble steps (default: the first 20%%)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=0.05, help="max |video diff| to the in-process ensemble")
    parser.add_argument("--mid-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "cos-ray-mid-1024")
    parser.add_argument("--cpu", action="store_true", help="CPU workers over gloo, tiny model: checks the script only")
    parser.add_argument("--no-layouts", dest="layouts", action="store_false", help="skip the parallel layouts")
    parser.add_argument("--layout-tolerance", type=float, default=0.05,
                        help="max |final latent diff| of a layout to one GPU (bf16)")
    args = parser.parse_args()
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if args.cpu:
        models = ["tiny"]
    else:
        try:
            import torch

            cuda = torch.cuda.is_available()
        except ImportError:
            cuda = False
        if not cuda and not os.environ.get("RAY_ADDRESS"):
            print("gpu_smoke: no CUDA device on this machine; run it on a GPU machine (or against a GPU cluster "
                  "with RAY_ADDRESS set), or pass --cpu to check the script itself", file=sys.stderr)
            return 2

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cos_ray.cluster.connect import connect

    connect()  # $RAY_ADDRESS, else a fresh local cluster (never someone else's)
    if not args.cpu:
        why = enough_gpus(args)
        if why:
            print(f"gpu_smoke: {why}", file=sys.stderr)
            return 2
    task = smoke_task(Path(args.mid_dir).parent / "cos-ray-smoke-task")
    layout_rows = []
    if args.layouts:
        import ray

        available = 2 if args.cpu else int(ray.cluster_resources().get("GPU", 0))
        for name in models:
            model = "tiny" if name == "tiny" else str(write_mid_model(args.mid_dir))
            layout_rows += layout_smoke(name, model, args, task, available)
        print_layouts(layout_rows, args)
        print()
    rows = []
    for name in models:
        model = "tiny" if name == "tiny" else str(write_mid_model(args.mid_dir))
        row = smoke(name, model, args, task)
        rows.append(row)
        print(f"{name}: {row}", flush=True)
    print()
    print(f"2 workers x {args.gpus_per_worker} GPU(s), {args.steps} steps, ensemble steps {args.merge_steps}, "
          f"median of {args.repeats}")
    print("| model | params/expert | tokens | backend | ensemble s | independent s | merge overhead | "
          "max video diff vs in-process |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['params'] / 1e6:.1f} M | {row['tokens']} | {row['backend']} | "
              f"{row['ensemble_s']:.3f} | {row['independent_s']:.3f} | {row['ratio']:.3f} | {row['video_diff']:.2e} |")
    failed = [row["model"] for row in rows if not row["ok"]]
    failed += [f"{row['model']} {row['layout']}" for row in layout_rows
               if row["latent_diff"] > args.layout_tolerance]
    if failed:
        print(f"gpu_smoke: FAILED: {', '.join(failed)} differ from the in-process ensemble by more than "
              f"{args.tolerance}", file=sys.stderr)
        return 1
    return 0


def smoke_task(folder: Path):
    """A maze-like first frame (416x240, the mid settings' aspect) and a prompt, written once."""
    from PIL import Image, ImageDraw

    from cos_ray.tasks.folder import read_task_folder

    if not (folder / "first_frame.png").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (416, 240), "white")
        draw = ImageDraw.Draw(image)
        draw.rectangle([0, 110, 260, 125], fill="black")
        draw.rectangle([20, 20, 60, 60], fill=(0, 200, 0))
        draw.rectangle([340, 170, 380, 210], fill=(220, 0, 0))
        image.save(folder / "first_frame.png")
        (folder / "prompt.txt").write_text("draw the path from the green start to the red goal\n")
    return read_task_folder(folder)


if __name__ == "__main__":
    sys.exit(main())
