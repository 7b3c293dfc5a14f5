"""The model card's training figure: the VAE and flow-matching losses per step, from the logs a training run wrote
(`vae_log.jsonl`, `flow_log.jsonl`); every other card figure is drawn from a store by `cos-ray figures`.

  python -m cos_ray.figures.loss RUN_DIR OUT.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cos_ray.figures.plotting import pyplot


def _read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` values."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss(run_dir: Path, out: Path) -> Path:
    plt = pyplot()
    vae, flow = _read_log(run_dir / "vae_log.jsonl"), _read_log(run_dir / "flow_log.jsonl")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if vae:
        a.plot([r["step"] for r in vae], [r["loss"] for r in vae], color="0.75", lw=0.8)
        a.plot([r["step"] for r in vae], smooth([r["loss"] for r in vae], 20), color="C0")
    a.set(title="stage 1: VAE reconstruction", xlabel="step (2 videos + 24 frames)", ylabel="weighted L1 + L2", yscale="log")
    if flow:
        steps = [r["step"] for r in flow]
        b.plot(steps, [r["loss"] for r in flow], color="0.75", lw=0.8)
        b.plot(steps, smooth([r["loss"] for r in flow], 20), color="C1")
        top = b.secondary_xaxis("top", functions=(lambda s: s * 32 / 1000, lambda k: k * 1000 / 32))
        top.set_xlabel("samples seen (thousands)")
    b.set(title="stage 2: flow matching", xlabel="step (batch 32)", ylabel="MSE(v, eps - x0)", yscale="log")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def main(argv=None) -> int:
    from cos_ray.errors import run_reporting_errors

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return run_reporting_errors(lambda: print(plot_loss(Path(argv[0]), Path(argv[1]))))


if __name__ == "__main__":
    raise SystemExit(main())
