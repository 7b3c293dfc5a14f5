"""The VAE's ceiling, as the model card shows it: validation mazes through a trained model's VAE and back (rows: the
ground truth's last frame, its round trip, the round trip's middle frame; nearest-neighbour x3). It runs the model,
so it lives with training, not with the store's figures (`cos_ray.figures` reads stores only).

  python -m cos_ray.training.vae_preview MODEL OUT.png
"""

from __future__ import annotations

import sys
from pathlib import Path


def plot_vae(model: str, out: Path, seed: int = 2, n: int = 4) -> Path:
    """Rows of validation mazes: the ground truth's last frame, its round trip through MODEL's VAE, the round trip's
    middle frame (nearest-neighbour x3)."""
    import numpy as np
    from PIL import Image

    from cos_ray.model.loader import load_pipeline
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.generation import family_params
    from cos_ray.training.distribution import model_distribution
    from cos_ray.training.evaluate import vae_round_trip

    family, params = model_distribution(model)
    pipe = load_pipeline(model, device="cpu").pipe
    rows = []
    for i in range(n):
        frames = get_family(family).generate(np.random.default_rng([seed, i]), family_params(family, **params)).frames
        back = vae_round_trip(pipe, frames)  # (frames, H, W, 3)
        rows.append(np.concatenate([frames[-1], back[-1], back[len(back) // 2]], axis=1))
    grid = np.concatenate(rows, axis=0)  # (n H, 3 W, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out)
    return out


def main(argv=None) -> int:
    from cos_ray.errors import run_reporting_errors

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return run_reporting_errors(lambda: print(plot_vae(argv[0], Path(argv[1]))))


if __name__ == "__main__":
    raise SystemExit(main())
