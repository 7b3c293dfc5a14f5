"""Peak host memory of loading one original-layout Wan expert (fp32 shards on disk -> bf16 model), shard by shard.

    python benchmarks/loader_memory.py [--dim 1536 --heads 12 --ffn 8960 --layers 10 --shards 3]

Writes a random WanModel-named expert of that shape as fp32 safetensors shards (tests/fixtures/wan_original.py),
then, in a fresh process, loads it through `cos_ray.model.wan_original.load_transformer` into bf16 on the CPU and
prints the peak resident set size (ru_maxrss) against the expert's bf16 and fp32 sizes. Measured here (defaults):
0.490 B parameters, 1.83 GiB fp32 in 3 shards; loading added 1.74 GiB at peak = the 0.91 GiB bf16 model + the
0.66 GiB shard being read (its pages count while it is mapped), never the 1.83 GiB fp32 expert whole. The defaults are the
largest Wan shape this 2-core / 23 GiB shared machine allows (Wan2.1-1.3B's width, 10 of its 30 blocks).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_expert(folder: Path, dim: int, heads: int, ffn: int, layers: int, shards: int) -> int:
    import torch
    from diffusers import WanTransformer3DModel

    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.wan_original import _original_config, wan_transformer_state_dict, write_sharded

    torch.manual_seed(0)
    model = WanTransformer3DModel(num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=36,
                                  out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=ffn, num_layers=layers)
    state = wan_transformer_state_dict(model)
    write_sharded(state, folder, shards)
    (folder / "config.json").write_text(json.dumps(_original_config(model)))
    return sum(tensor.numel() for tensor in state.values())


MEASURE = """
import resource, sys, torch
torch.set_num_threads(1)
from pathlib import Path
from cos_ray.model import wan_original
from cos_ray.model.shapes import shard_files
folder = Path(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = wan_original.load_transformer(shard_files(folder), wan_original.expert_config(folder), torch.bfloat16, "cpu",
                                      where="bench")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base * 1024, peak * 1024, sum(p.numel() for p in model.parameters()))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--ffn", type=int, default=8960)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--shards", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cos-ray-loader-") as tmp:
        folder = Path(tmp) / "high_noise_model"
        code = (f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import loader_memory as m; from pathlib "
                f"import Path; print(m.write_expert(Path({str(folder)!r}), {args.dim}, {args.heads}, {args.ffn}, "
                f"{args.layers}, {args.shards}))")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=1800, stdout=subprocess.DEVNULL)
        shards = sorted(folder.glob("*.safetensors"))
        disk = sum(path.stat().st_size for path in shards)
        largest = max(path.stat().st_size for path in shards)
        out = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], check=True, timeout=1800,
                             capture_output=True, text=True).stdout.split()
        base, peak, parameters = (int(value) for value in out[-3:])
    gib = 1 << 30
    bf16 = parameters * 2
    print(f"expert: {parameters / 1e9:.3f} B parameters (dim {args.dim}, {args.layers} blocks), "
          f"{disk / gib:.2f} GiB fp32 on disk in {args.shards} shards (largest {largest / gib:.2f} GiB)")
    print(f"bf16 model: {bf16 / gib:.2f} GiB")
    print(f"peak RSS: {peak / gib:.2f} GiB (after imports: {base / gib:.2f} GiB; "
          f"loading added {(peak - base) / gib:.2f} GiB = {(peak - base) / bf16:.2f} x the bf16 model, "
          f"{(peak - base) / disk:.2f} x the fp32 files)")
    print(f"bound: bf16 model + the largest fp32 shard (memory-mapped while it is read) = {(bf16 + largest) / gib:.2f} GiB")


if __name__ == "__main__":
    main()
